package keyspace

import (
	"context"
	"sync"
	"time"

	"github.com/redisbot/redisbot/handlers"
)

// The adaptive pause: how much slower than its fastest a SCAN round trip
// must be before the scan backs off, and how far the pause may grow.
const (
	busyFactor = 4
	// busyMargin keeps a loopback baseline of 30 µs from calling a
	// 150 µs round trip busy: only a millisecond more is felt by clients.
	busyMargin = time.Millisecond
	// calmFactor and calmMargin: a round trip this close to the baseline
	// means the server is back to normal and the pause can shrink.
	calmFactor = 2
	calmMargin = 250 * time.Microsecond
	firstPause = 10 * time.Millisecond
	maxPause   = time.Second
)

// throttle paces one node's scan: a budget of commands per second, and a
// pause that doubles while the server answers much slower than it can
// (another client's big command, a fork, a busy moment) and halves as it
// recovers. With Fast it only records round trips.
type throttle struct {
	fast   bool
	budget int
	now    func() time.Time

	// mu: a --fast scan's workers count their commands at the same time.
	mu       sync.Mutex
	next     time.Time     // when the budget allows the next round trip
	pause    time.Duration // the adaptive pause, per SCAN
	pauseDue time.Duration // the pause to take after the current round trip
	report   handlers.Throttle
}

func newThrottle(opts handlers.KeyScanOptions, now func() time.Time) *throttle {
	return &throttle{fast: opts.Fast, budget: opts.Budget, now: now}
}

// observe takes the round trip of a SCAN. SCAN is one cheap command, so its
// round trip is the time the server took to get to it: the latency every
// other client sees at that moment.
func (t *throttle) observe(rtt time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := &t.report
	if r.BaselineRTT == 0 || rtt < r.BaselineRTT {
		r.BaselineRTT = rtt
	}
	r.MaxRTT = max(r.MaxRTT, rtt)
	if t.fast {
		return
	}
	base := r.BaselineRTT
	switch {
	case rtt > busyFactor*base && rtt-base > busyMargin:
		t.pause = min(max(2*t.pause, firstPause), maxPause)
		r.Backoffs++
	case rtt < calmFactor*base || rtt-base < calmMargin:
		t.pause /= 2
		if t.pause < firstPause {
			t.pause = 0
		}
	}
	t.pauseDue = t.pause
}

// wait counts the commands of a round trip that began at start and sleeps
// until the budget allows cost commands, plus any pause observe asked for.
// The budget is a next-allowed time, so time spent idle is not saved up for
// a burst later.
func (t *throttle) wait(ctx context.Context, start time.Time, commands, cost int64) {
	t.mu.Lock()
	t.report.Commands += commands
	if t.fast {
		t.mu.Unlock()
		return
	}
	if t.next.Before(start) {
		t.next = start
	}
	t.next = t.next.Add(time.Duration(cost) * time.Second / time.Duration(t.budget))
	d := t.next.Sub(t.now()) + t.pauseDue
	t.pauseDue = 0
	t.mu.Unlock()
	if d <= 0 {
		return
	}
	begin := t.now()
	timer := time.NewTimer(d)
	select {
	case <-timer.C:
	case <-ctx.Done():
		timer.Stop()
	}
	t.mu.Lock()
	t.report.Paused += t.now().Sub(begin)
	t.mu.Unlock()
}
