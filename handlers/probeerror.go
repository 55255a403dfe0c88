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

// ClassOf returns the class of a probe error, or "" if err is not one.
func ClassOf(err error) ErrorClass {
	var pe *ProbeError
	if errors.As(err, &pe) {
		return pe.Class
	}
	return ""
}
