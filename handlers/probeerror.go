package handlers

import (
	"errors"
	"fmt"
)

// ErrorClass says why a probe failed, in words an on-call engineer can act on.
type ErrorClass string

// Error classes of a failed probe.
const (
	ClassTimeout  ErrorClass = "timeout"  // no answer within the probe timeout
	ClassRefused  ErrorClass = "refused"  // nothing listens on the port
	ClassDNS      ErrorClass = "dns"      // host name does not resolve
	ClassTLS      ErrorClass = "tls"      // handshake or certificate problem
	ClassAuth     ErrorClass = "auth"     // wrong or missing credentials
	ClassNoPerm   ErrorClass = "noperm"   // ACL denies a command the probe needs
	ClassLoading  ErrorClass = "loading"  // server is loading its dataset
	ClassBusy     ErrorClass = "busy"     // a script or function blocks the server
	ClassProtocol ErrorClass = "protocol" // the answer is not Redis
	ClassNetwork  ErrorClass = "network"  // connection reset, unreachable network
	ClassError    ErrorClass = "error"    // any other server error
)

// ProbeError is a failed probe of one instance.
type ProbeError struct {
	Instance string
	Class    ErrorClass
	Err      error
}

func (e *ProbeError) Error() string {
	return fmt.Sprintf("probe %s: %s: %v", e.Instance, e.Class, e.Err)
}

func (e *ProbeError) Unwrap() error { return e.Err }

// advice is what a failed probe of class c tells an on-call engineer: how
// bad it is (the unreachable finding's severity) and where to look first.
// Each class names its own suspect: a generic "is it up?" sends someone to
// restart a server whose only fault is a TLS setting or a DNS record.
func (c ErrorClass) advice() (Severity, string) {
	switch c {
	case ClassLoading:
		return SeverityWarning, "the server is loading its dataset; memory numbers settle when it finishes"
	case ClassAuth:
		return SeverityWarning, "check the instance's username and password in the bot's config"
	case ClassNoPerm:
		return SeverityWarning, "the bot's ACL user lacks a command it needs (see docs/redis-acl.md)"
	case ClassBusy:
		return SeverityCritical, "a script or function is blocking the server (SCRIPT KILL / FUNCTION KILL)"
	case ClassTimeout:
		return SeverityCritical, "no answer within the probe timeout: the server is blocked, overloaded or the network drops packets"
	case ClassRefused:
		return SeverityCritical, "nothing listens on that port: the process is down or restarting (an OOM kill?)"
	case ClassTLS:
		return SeverityCritical, "the TLS handshake failed: either that port does not speak TLS (a plain port; is TLS enabled there, on tls-port?) " +
			"or the server's certificate does not match the bot's tls settings (ca_file, server_name); the server itself may be fine"
	case ClassDNS:
		return SeverityCritical, "the host name does not resolve from the bot: a typo in addr, or a DNS record removed or changed (after a failover?)"
	case ClassNetwork:
		return SeverityCritical, "the connection was reset or the network is unreachable: a firewall, security group or route, or the server closing connections (maxclients?)"
	case ClassProtocol:
		return SeverityCritical, "the answer was not Redis: is the address right?"
	case ClassInternal:
		// The bot failed, so the instance's state is unknown rather than bad.
		return SeverityWarning, "the bot itself failed while reading this instance (a bug in redisbot; its log has the stack)"
	}
	return SeverityCritical, "check that the server is up and reachable from the bot"
}

// ClassOf returns the class of a probe error, or "" if err is not one.
func ClassOf(err error) ErrorClass {
	var pe *ProbeError
	if errors.As(err, &pe) {
		return pe.Class
	}
	return ""
}
