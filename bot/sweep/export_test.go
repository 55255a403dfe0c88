package sweep

import "time"

// SetClock replaces the Leader's local clock, so a test can make it look
// paused. Tests call it between renewals (their leases are long).
func (l *Leader) SetClock(now func() time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.now = now
}
