//go:build unix

package resptest

import (
	"fmt"
	"net"
	"strconv"
	"syscall"
)

// reservePort binds a TCP socket on a loopback port without listening on it.
// Connections to the port are refused, and since the port stays bound, no
// other server in the process (or client's ephemeral port) can take it while
// the Refuse server lives: closing a listener instead would leave a port that
// the next of a thousand listeners may well be given.
func reservePort() (string, *socket, error) {
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return "", nil, fmt.Errorf("socket: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		_ = syscall.Close(fd)
		return "", nil, fmt.Errorf("bind: %w", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		_ = syscall.Close(fd)
		return "", nil, fmt.Errorf("getsockname: %w", err)
	}
	in4, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		_ = syscall.Close(fd)
		return "", nil, fmt.Errorf("getsockname: unexpected address %T", sa)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(in4.Port)), &socket{fd: fd}, nil
}

type socket struct{ fd int }

func (s *socket) Close() error { return syscall.Close(s.fd) }
