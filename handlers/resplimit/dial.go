package resplimit

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// DialFunc is the type of redis.Options.Dialer.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Dialer returns a DialFunc for redis.Options.Dialer that connects (TCP or
// a unix socket), does the TLS handshake when tlsConfig is set, and checks
// every reply against limits.
//
// The handshake is bounded by ctx and the timeout: go-redis' own dialer
// uses tls.DialWithDialer, which ignores the context. A handshake that
// fails after the connection was made returns a *HandshakeError, so a TLS
// client pointed at a plain port reads as a TLS problem, not a timeout.
//
// timeout is the caller's whole budget for a command, connecting
// included; the dial gets three quarters of it. go-redis dials in a
// goroutine of its own and waits for it only until the caller's context
// ends, so a dial that ran to the caller's deadline would have its error
// replaced by a bare "context deadline exceeded", and a silent TLS port
// would never be named.
func Dialer(timeout time.Duration, tlsConfig *tls.Config, limits Limits) DialFunc {
	limits = limits.withDefaults()
	timeout -= timeout / 4
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		d := net.Dialer{Timeout: timeout, KeepAliveConfig: keepAlive}
		raw, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if tlsConfig == nil {
			return Wrap(raw, limits), nil
		}
		cfg := tlsConfig
		if cfg.ServerName == "" {
			// As tls.DialWithDialer does: verify the certificate
			// against the host dialed.
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				host = addr
			}
			cfg = cfg.Clone()
			cfg.ServerName = host
		}
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, &HandshakeError{Addr: addr, Err: err}
		}
		return Wrap(tc, limits), nil
	}
}

// keepAlive is go-redis' default dialer's: probe after 30 s idle, below
// the idle timeouts of load balancers and NAT, and give up after three
// unanswered probes 5 s apart.
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 5 * time.Second, Count: 3}

// HandshakeError is a TLS handshake that failed after the connection to
// Addr was made: the port is open, but did not complete TLS.
type HandshakeError struct {
	Addr string
	Err  error
}

func (e *HandshakeError) Error() string {
	msg := fmt.Sprintf("TLS handshake with %s: %v", e.Addr, e.Err)
	if e.NoTLSAnswer() {
		msg += " (is TLS enabled on that port?)"
	}
	return msg
}

func (e *HandshakeError) Unwrap() error { return e.Err }

// NoTLSAnswer reports whether the server never answered as a TLS server
// would: it stayed silent until the deadline, closed or reset the
// connection, or sent bytes that are not a TLS record (a plain Redis port
// answers the ClientHello with "-ERR ..."). A certificate the client
// rejects, or an alert from the server, means TLS is spoken there.
func (e *HandshakeError) NoTLSAnswer() bool {
	var (
		rec    tls.RecordHeaderError
		netErr net.Error
	)
	return errors.As(e.Err, &rec) ||
		errors.Is(e.Err, io.EOF) || errors.Is(e.Err, io.ErrUnexpectedEOF) ||
		errors.Is(e.Err, syscall.ECONNRESET) || errors.Is(e.Err, syscall.EPIPE) ||
		errors.Is(e.Err, context.DeadlineExceeded) || errors.Is(e.Err, os.ErrDeadlineExceeded) ||
		(errors.As(e.Err, &netErr) && netErr.Timeout())
}
