package handlers

import (
	"fmt"
	"strconv"
	"time"
)

// ruleSlowServer reports a server that answered the probe, but slowly:
// INFO's round trip, or the connect (TCP, TLS and the client's HELLO) when
// that took longer, is at or over slow_reply_info or slow_reply_warning.
// A blocked server holds back the connect's HELLO as much as a command,
// so a probe that had to connect is judged on both.
//
// Slowness is what clients feel now, and memory is often its cause: the
// fork of a BGSAVE or AOF rewrite stalls a big instance, swapping slows
// every command. It stops at warning: a server that does not answer
// within the probe timeout is unreachable, and that is critical.
func ruleSlowServer(in Input) []Finding {
	s, t := in.Cur, in.T
	slowest := max(s.RoundTrip, s.Connect)
	var (
		sev       Severity
		threshold time.Duration
		name      string
	)
	switch {
	case t.SlowReplyWarning > 0 && slowest >= t.SlowReplyWarning:
		sev, threshold, name = SeverityWarning, t.SlowReplyWarning, "slow_reply_warning"
	case t.SlowReplyInfo > 0 && slowest >= t.SlowReplyInfo:
		sev, threshold, name = SeverityInfo, t.SlowReplyInfo, "slow_reply_info"
	default:
		return nil
	}

	var summary string
	switch {
	case s.Connect > s.RoundTrip:
		summary = fmt.Sprintf("Connecting took %s (TCP, TLS and HELLO), then INFO %s", millis(s.Connect), millis(s.RoundTrip))
	case s.Connect > 0:
		summary = fmt.Sprintf("INFO took %s to answer (connecting %s)", millis(s.RoundTrip), millis(s.Connect))
	default:
		summary = fmt.Sprintf("INFO took %s to answer on an open connection", millis(s.RoundTrip))
	}
	summary += fmt.Sprintf(", at or over %s %s: the server answers, but a client with a shorter timeout fails.", name, millis(threshold))

	connect := factMillis("connect_ms", s.Connect)
	if s.Connect == 0 {
		connect.Text = "none (an open connection)"
	}
	ev := []Fact{factMillis("info_round_trip_ms", s.RoundTrip), connect,
		{Name: "slow_reply_threshold_ms", Value: threshold.Milliseconds(), Text: millis(threshold) + " (" + name + ")"}}

	// What INFO says about the usual causes, as a lead: a fork in progress
	// or a slow last fork. Swapping has its own finding (frag-swap).
	fork, forkOK := s.Int("latest_fork_usec")
	if forkOK {
		ev = append(ev, factInt("latest_fork_usec", fork))
	}
	forkTook := time.Duration(fork) * time.Microsecond
	switch {
	case forkInProgress(s):
		ev = append(ev, factText("fork_in_progress", "yes"))
		summary += " A BGSAVE or AOF rewrite is running: its fork stalls a big instance"
		if forkOK {
			summary += " (the last one took " + millis(forkTook) + ")"
		}
		summary += "."
	case forkOK && t.SlowReplyInfo > 0 && forkTook >= t.SlowReplyInfo:
		summary += " The last fork stalled the server for " + millis(forkTook) + "."
	}
	if n, ok := s.Int("instantaneous_ops_per_sec"); ok {
		ev = append(ev, factInt("instantaneous_ops_per_sec", n))
	}
	if n, ok := s.Int("connected_clients"); ok {
		ev = append(ev, factInt("connected_clients", n))
	}
	return []Finding{newFinding("slow-server", sev, summary, ev...)}
}

// factMillis is a latency in whole milliseconds, shown as millis.
func factMillis(name string, d time.Duration) Fact {
	return Fact{Name: name, Value: d.Milliseconds(), Text: millis(d)}
}

// millis shows a latency the way an on-call engineer compares it with a
// client timeout: "812 ms", "1.25 s", "0.3 ms".
func millis(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + " ms"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + " s"
}
