package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/resplimit"
)

// Classify maps an error from go-redis or the network to an ErrorClass.
func Classify(err error) handlers.ErrorClass {
	if err == nil {
		return ""
	}
	msg := err.Error()
	var (
		dnsErr  *net.DNSError
		recErr  tls.RecordHeaderError
		certErr *tls.CertificateVerificationError
		unkAuth x509.UnknownAuthorityError
		hostErr x509.HostnameError
		netErr  net.Error
		hsErr   *resplimit.HandshakeError
	)
	switch {
	case errors.Is(err, resplimit.ErrLimit), errors.Is(err, resplimit.ErrProtocol):
		return handlers.ClassProtocol
	// A TLS handshake that timed out after the connect wraps a deadline
	// error, so it comes before the timeouts: the port answered, but not
	// with TLS (a plain port, most likely).
	case errors.As(err, &hsErr):
		return handlers.ClassTLS
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return handlers.ClassTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return handlers.ClassRefused
	case errors.As(err, &dnsErr):
		return handlers.ClassDNS
	case errors.As(err, &recErr), errors.As(err, &certErr), errors.As(err, &unkAuth), errors.As(err, &hostErr),
		strings.Contains(msg, "tls: "):
		return handlers.ClassTLS
	}
	var re redis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		switch prefix, _, _ := strings.Cut(msg, " "); prefix {
		case "WRONGPASS", "NOAUTH":
			return handlers.ClassAuth
		case "NOPERM":
			return handlers.ClassNoPerm
		case "LOADING":
			return handlers.ClassLoading
		case "BUSY":
			return handlers.ClassBusy
		}
		if strings.Contains(msg, "invalid password") || strings.Contains(msg, "AUTH <password> called without any password") ||
			strings.Contains(msg, "invalid username-password") {
			return handlers.ClassAuth
		}
		return handlers.ClassError
	}
	if errors.As(err, &netErr) && netErr.Timeout() {
		return handlers.ClassTimeout
	}
	// go-redis reports replies it cannot parse with these words.
	if strings.Contains(msg, "redis: can't parse") || strings.Contains(msg, "unexpected") ||
		strings.Contains(msg, "invalid reply") || strings.Contains(msg, "redis: got ") ||
		strings.Contains(msg, "not a Redis server") {
		return handlers.ClassProtocol
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ENETUNREACH) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, net.ErrClosed) {
		return handlers.ClassNetwork
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return handlers.ClassNetwork
	}
	return handlers.ClassError
}

// isServerError reports whether err is an error reply from the server (the
// connection itself is fine).
func isServerError(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}

// isClassified reports whether a server error has a class of its own (auth,
// noperm, loading, busy) rather than being a plain ERR that a fallback may fix.
func isClassified(err error) bool {
	return Classify(err) != handlers.ClassError
}
