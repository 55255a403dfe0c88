//go:build !unix

package resptest

import (
	"io"
	"net"
)

// reservePort listens on a free port and closes the listener. Without the
// bind-only socket of Unix the port may be reused by a later server.
func reservePort() (string, io.Closer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := ln.Addr().String()
	return addr, nopCloser{}, ln.Close()
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }
