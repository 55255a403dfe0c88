//go:build linux || darwin

package resptest

import (
	"fmt"
	"syscall"
)

// RaiseFileLimit makes sure the process may hold at least need open files,
// raising the soft RLIMIT_NOFILE toward the hard limit. A fleet of n servers
// probed once needs about 3n descriptors: n listeners, and both ends of n
// loopback connections. Go (since 1.19) already raises the soft limit to the
// hard limit at start-up on Linux and macOS, so this mostly reports a hard
// limit that is too low, with the fix in the error.
func RaiseFileLimit(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur >= need {
		return nil
	}
	if lim.Max < need {
		return fmt.Errorf("need %d open files, hard limit is %d: raise it (ulimit -Hn %d, or LimitNOFILE= in systemd)", need, lim.Max, need)
	}
	lim.Cur = need
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("setrlimit RLIMIT_NOFILE to %d: %w", need, err)
	}
	return nil
}
