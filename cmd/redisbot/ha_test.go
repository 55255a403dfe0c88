package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/bot/slacktest"
	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/handlers/redistest"
)

// The fault tests of issue 17: two `redisbot serve` processes on one
// redis-server store and the local Slack, with the leader killed, stopped
// across a 429 and the store killed mid-post, with and without AOF. Each
// counts the alert messages of one transition and the executions of one
// approval.

// stateServer is the replicas' shared store: a redis-server on a port and
// directory of its own that a test kills (SIGKILL) and starts again on the
// same address, with its data when AOF is on (appendfsync always, so a
// kill loses nothing acknowledged) and empty when persistence is off.
type stateServer struct {
	t    *testing.T
	port int
	dir  string
	aof  bool
	cmd  *exec.Cmd
	done chan struct{}
}

func startState(t *testing.T, aof bool) *stateServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &stateServer{t: t, port: port, dir: t.TempDir(), aof: aof}
	s.start()
	t.Cleanup(s.kill)
	return s
}

func (s *stateServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

func (s *stateServer) URL() string { return "redis://" + s.Addr() + "/0" }

func (s *stateServer) start() {
	s.t.Helper()
	appendonly := "no"
	if s.aof {
		appendonly = "yes"
	}
	s.cmd = exec.Command("redis-server", "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--appendonly", appendonly, "--appendfsync", "always", "--logfile", filepath.Join(s.dir, "redis.log"))
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start the store: %v", err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.done)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := redis.NewClient(&redis.Options{Addr: s.Addr(), Protocol: 2, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		err := c.Ping(context.Background()).Err()
		c.Close()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("store on %s not up: %v", s.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill stops the server at once, as a crash would.
func (s *stateServer) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	s.cmd = nil
}

// holder reads the leader lease's holder, without taking part in it.
func (s *stateServer) holder(t *testing.T) string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), Protocol: 2})
	defer c.Close()
	h, err := c.HGet(context.Background(), "redisbot:leases:scheduler", "holder").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatal(err)
	}
	return h
}

// replica is one `redisbot serve` process.
type replica struct {
	cmd  *exec.Cmd
	log  string
	http string
	done chan struct{}
}

// haCluster is two replicas of one config on one store and one local
// Slack.
type haCluster struct {
	t        *testing.T
	bin      string
	fake     *slacktest.Server
	state    *stateServer
	body     string // the config without http.listen
	replicas []*replica
}

// haConfig is the replicas' config around instances: sweeps every second
// under a 3s lease, alerts to alertsChannel, operators and approvers.
func haConfig(fake *slacktest.Server, state *stateServer, instances string) string {
	return fmt.Sprintf("probe:\n  timeout: 1s\nslack:\n  api_url: %s\nstore:\n  redis_url: %s\n%saccess:\n  operators: [U0OP]\n  approvers: [U0LEAD1, U0LEAD2]\ninstances:\n%s",
		fake.APIURL(), state.URL(), sweepYAML(""), instances)
}

func newHACluster(t *testing.T, state *stateServer, instances string) *haCluster {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "redisbot")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	fake := slacktest.New(t)
	fake.AllowMentions("<!subteam^S0ONCALL>", "<@U0*>")
	c := &haCluster{t: t, bin: bin, fake: fake, state: state, body: haConfig(fake, state, instances)}
	for range 2 {
		c.start()
	}
	waitConnections(t, fake, 2)
	return c
}

// start launches one more replica with its own /metrics address.
func (c *haCluster) start() *replica {
	c.t.Helper()
	r := &replica{http: freeAddr(c.t), done: make(chan struct{})}
	cfg := writeConfig(c.t, "http:\n  listen: "+r.http+"\n"+c.body)
	r.log = filepath.Join(c.t.TempDir(), "replica.log")
	logf, err := os.Create(r.log)
	if err != nil {
		c.t.Fatal(err)
	}
	r.cmd = exec.Command(c.bin, "serve", "--config", cfg, "--log-format", "json")
	r.cmd.Env = append(os.Environ(), "SLACK_APP_TOKEN="+slacktest.AppToken, "SLACK_BOT_TOKEN="+slacktest.BotToken)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() { _ = r.cmd.Wait(); logf.Close(); close(r.done) }()
	c.t.Cleanup(func() {
		_ = r.cmd.Process.Signal(syscall.SIGCONT)
		_ = r.cmd.Process.Kill()
		<-r.done
	})
	c.replicas = append(c.replicas, r)
	return r
}

// leader waits until the lease has a holder among the live replicas and
// returns it, and the other live replica.
func (c *haCluster) leader() (leader, follower *replica) {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if parts := strings.Split(c.state.holder(c.t), "/"); len(parts) >= 3 {
			pid, _ := strconv.Atoi(parts[len(parts)-2])
			for _, r := range c.live() {
				if r.cmd.Process.Pid == pid {
					leader = r
				} else {
					follower = r
				}
			}
			if leader != nil {
				return leader, follower
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("no replica holds the lease (holder %q)", c.state.holder(c.t))
	return nil, nil
}

func (c *haCluster) live() []*replica {
	var out []*replica
	for _, r := range c.replicas {
		select {
		case <-r.done:
		default:
			out = append(out, r)
		}
	}
	return out
}

func (r *replica) get(path string) (int, string) {
	resp, err := http.Get("http://" + r.http + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// logs returns the replica's log records with msg.
func (r *replica) logs(t *testing.T, msg string) []map[string]any {
	t.Helper()
	raw, err := os.ReadFile(r.log)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(string(raw), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// waitMetric waits until the replica's /metrics has a line.
func (r *replica) waitMetric(t *testing.T, line string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		_, body := r.get("/metrics")
		if strings.Contains(body, "\n"+line+"\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics of %s lacks %q:\n%s", r.http, line, grepMetrics(body, "redisbot_leader|fleet|fenced"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func grepMetrics(body, re string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		for _, w := range strings.Split(re, "|") {
			if strings.Contains(l, w) && !strings.HasPrefix(l, "#") {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// fill makes a noeviction server reject writes: oom-rejecting fires.
func fill(t *testing.T, srv *redistest.Server) {
	t.Helper()
	c := srv.Client()
	defer c.Close()
	if err := redistest.FillUntilOOM(context.Background(), c, 1000, 0, 1_000_000); err != nil {
		t.Fatal(err)
	}
}

func isAlert(instance string) func(slacktest.Post) bool {
	return func(p slacktest.Post) bool {
		return p.Method == "chat.postMessage" && p.Channel == alertsChannel && p.ThreadTS == "" &&
			strings.Contains(p.BlocksText(), instance) && strings.Contains(p.BlocksText(), "`oom-rejecting`")
	}
}

// Both replicas are ready, the leader and the follower, for longer than
// three sweep periods; both export who leads and the fleet's sweep age
// from the store; a kill -9 of the leader hands the lease over within
// lease + lease/3 and the survivor alerts on what comes next, once.
func TestHAFollowerReadyAndLeaderKill(t *testing.T) {
	state := startState(t, true)
	later := redistest.StartT(t, "--maxmemory", "20mb", "--maxmemory-policy", "noeviction")
	c := newHACluster(t, state, instanceYAML("later-1", later.Addr))
	leader, follower := c.leader()

	time.Sleep(4 * time.Second) // over three sweep periods of the follower without a sweep
	for _, r := range []*replica{leader, follower} {
		if code, body := r.get("/readyz"); code != http.StatusOK {
			t.Errorf("/readyz of the %s = %d %q", map[bool]string{true: "leader", false: "follower"}[r == leader], code, body)
		}
	}
	leader.waitMetric(t, "redisbot_leader 1", 5*time.Second)
	follower.waitMetric(t, "redisbot_leader 0", 5*time.Second)
	for _, r := range []*replica{leader, follower} {
		_, body := r.get("/metrics")
		age := metricValue(body, "redisbot_fleet_last_sweep_age_seconds")
		if age < 0 || age > 5 {
			t.Errorf("fleet sweep age on %s = %v, want a recent sweep (the leader's, read from the store)", r.http, age)
		}
	}

	killed := time.Now()
	if err := leader.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-leader.done
	fill(t, later)
	posted := c.fake.WaitPosts(t, 1, 20*time.Second, isAlert("later-1"))[0]
	became := follower.logs(t, "became leader for scheduled work")
	if len(became) == 0 {
		t.Fatal("the follower never logged taking the lease")
	}
	at, _ := time.Parse(time.RFC3339Nano, became[len(became)-1]["time"].(string))
	// lease 3s: it expires at most 3s after the last renewal, and the
	// follower tries every second; 2s more for a loaded test machine
	// (docs/benchmarks.md has the spread).
	if d := at.Sub(killed); d > 4*time.Second+2*time.Second {
		t.Errorf("takeover %v after the kill, want within lease + lease/3 (4s)", d)
	}
	t.Logf("takeover %v, first alert %v after the kill", at.Sub(killed).Round(time.Millisecond), posted.At.Sub(killed).Round(time.Millisecond))
	follower.waitMetric(t, "redisbot_leader 1", 5*time.Second)
	time.Sleep(3 * time.Second)
	if n := alertPosts(c.fake, "later-1", "oom-rejecting"); n != 1 {
		t.Errorf("%d alert messages after takeover, want 1", n)
	}
}

// metricValue reads one unlabelled sample, -1 when absent.
func metricValue(body, name string) float64 {
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// Issue 17, case 2: the leader's alert post is answered 429 with a
// Retry-After, and the leader is stopped (SIGSTOP) while it waits, past
// its lease. The follower takes over and posts the alert; the old leader,
// resumed, posts nothing: its retry checks the lease first, or, when the
// pause outlasted the sweep's delivery deadline (issue 18: with sweeps
// every second, it always does), the post is left to a next sweep and the
// sweep's writes are refused by the store's fence. Since the outbox fails
// at once a post that a Retry-After would keep past its deadline, that
// sweep usually ends, and saves, before the leader is stopped: resumed, it
// learns from its lease renewal that another replica leads ("lost
// leadership") and sweeps no more. Either way, one alert message.
func TestHAPausedLeaderAcrossRetryAfter(t *testing.T) {
	state := startState(t, true)
	later := redistest.StartT(t, "--maxmemory", "20mb", "--maxmemory-policy", "noeviction")
	c := newHACluster(t, state, instanceYAML("later-1", later.Addr))
	leader, follower := c.leader()

	c.fake.RateLimit("chat.postMessage", 1, 3*time.Second)
	fill(t, later)
	deadline := time.Now().Add(20 * time.Second)
	for c.fake.RateLimited("chat.postMessage") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the leader's alert post was never answered 429")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := leader.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	c.fake.WaitPosts(t, 1, 20*time.Second, isAlert("later-1"))
	if h := state.holder(t); !strings.Contains(h, "/"+strconv.Itoa(follower.cmd.Process.Pid)+"/") {
		t.Errorf("lease holder %q, want the follower", h)
	}
	if err := leader.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// The resumed leader's retry comes due at once; give it time to try.
	refused := func() bool {
		return len(leader.logs(t, "not posting: another replica took the leader lease"))+
			len(leader.logs(t, "sweep stopped: another replica took the leader lease; nothing more is written or posted")) > 0
	}
	fenced := func() bool { return refused() || len(leader.logs(t, "lost leadership")) > 0 }
	deadline = time.Now().Add(10 * time.Second)
	for !fenced() && alertPosts(c.fake, "later-1", "oom-rejecting") < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	if n := alertPosts(c.fake, "later-1", "oom-rejecting"); n != 1 {
		t.Errorf("%d alert messages, want 1 (the resumed leader posted after its retry)", n)
	}
	if !fenced() {
		t.Fatal("the resumed leader never logged that its lease was gone")
	}
	_, body := leader.get("/metrics")
	if refused() && !strings.Contains(body, "\n"+`redisbot_fenced_total{what="slack"} 1`+"\n") && !strings.Contains(body, "\n"+`redisbot_fenced_total{what="store"}`) {
		t.Errorf("the resumed leader was refused but counted no fenced post or write:\n%s", grepMetrics(body, "fenced"))
	}
	leader.waitMetric(t, "redisbot_leader 0", 5*time.Second)
}

// Issue 17, cases 3 and 5: the store is killed while the leader's alert
// post is in flight (posted, its answer held), so the write of its
// message id fails; users get a plain answer during the outage and a
// pending approval stays pending; after the store comes back (with its
// data under AOF, empty without), the alert is found in the channel by its
// metadata and never posted twice, and the approval, clicked on both
// replicas, runs once.
func TestHAStoreRestartMidPost(t *testing.T) {
	for _, aof := range []bool{true, false} {
		t.Run(map[bool]string{true: "aof", false: "no persistence"}[aof], func(t *testing.T) {
			state := startState(t, aof)
			later := redistest.StartT(t, "--maxmemory", "20mb", "--maxmemory-policy", "noeviction")
			cache := redistest.StartT(t)
			c := newHACluster(t, state, instanceYAML("later-1", later.Addr)+instanceYAML("cache-1", cache.Addr))
			fake := c.fake
			c.leader()

			fake.SlashCommand(slash(onCall, "U0OP", "bgsave cache-1"))
			msg := approvalMessageFor(t, fake, "bgsave", "cache-1")
			// Its audit trail's first line too: the hold below is for the
			// alert's post.
			fake.WaitPosts(t, 1, 10*time.Second, func(p slacktest.Post) bool { return p.ThreadTS == msg.TS })

			release := fake.HoldAnswers("chat.postMessage", 1)
			fill(t, later)
			alert := fake.WaitPosts(t, 1, 20*time.Second, isAlert("later-1"))[0]
			state.kill()
			release()

			// While the store is down: plain answers, nothing gone.
			down := len(fake.Posts())
			fake.SlashCommand(slash(onCall, "U0OP", "approvals"))
			fake.WaitPosts(t, 1, 15*time.Second, ephemeralTo("State store unavailable, try again in a moment."))
			fake.SlashCommand(slash(onCall, "U0OP", "purge cache-1"))
			fake.WaitPosts(t, 2, 15*time.Second, ephemeralTo("State store unavailable, try again in a moment."))
			fake.Click("U0LEAD1", onCall, msg.TS, button(t, msg, "approve/"))
			fake.WaitPosts(t, 1, 15*time.Second, ephemeralTo("your click was not recorded and the request is still pending"))
			for _, p := range fake.Posts()[down:] {
				text := p.Text + p.BlocksText()
				if strings.Contains(text, "no longer exists") || strings.Contains(text, "dial tcp") || strings.Contains(text, state.Addr()) {
					t.Errorf("an answer during the outage: %s", p)
				}
			}
			for _, r := range c.live() {
				code, body := r.get("/readyz")
				if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "store: ") || strings.Contains(body, "store: store:") {
					t.Errorf("/readyz during the outage = %d %q", code, body)
				}
			}

			state.start()
			// Lease back (3s), a sweep or two: the alert's message is found
			// and redrawn, not posted again.
			fake.WaitPosts(t, 1, 30*time.Second, func(p slacktest.Post) bool {
				return p.Method == "chat.update" && p.TS == alert.TS
			})
			time.Sleep(3 * time.Second)
			if n := alertPosts(fake, "later-1", "oom-rejecting"); n != 1 {
				t.Errorf("%d alert messages for one transition, want 1", n)
			}
			st, err := store.Open(context.Background(), store.Options{RedisURL: state.URL()})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if a, err := st.Alert(context.Background(), "later-1", "oom-rejecting"); err != nil || a.MessageTS != alert.TS {
				t.Errorf("stored alert %+v (%v), want message %s", a, err, alert.TS)
			}

			if aof {
				// The approval survived, still pending; clicks on both
				// replicas run it once.
				if n := approveAll(t, fake, msg, []string{"U0LEAD1", "U0LEAD2"}); n != 1 {
					t.Errorf("%d executions, want 1", n)
				}
				return
			}
			// Without persistence the request is gone, and is said to be.
			fake.Click("U0LEAD2", onCall, msg.TS, button(t, msg, "approve/"))
			fake.WaitPosts(t, 1, 15*time.Second, ephemeralTo("This approval request no longer exists."))
		})
	}
}
