package handlers

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode"

	"github.com/redisbot/redisbot/handlers/redact"
)

// ClassInternal is a probe that failed inside the bot (a recovered panic),
// not because of the instance: the bot cannot say what state it is in.
const ClassInternal ErrorClass = "internal"

// maxStack bounds the stack a PanicError keeps: enough for any real
// goroutine, and a log line that stays a log line.
const maxStack = 64 << 10

// PanicError is a panic recovered by Safely: what was panicked with and the
// stack of the goroutine that panicked, for the transport to log.
//
// Its Error text is safe to show to a user: the raw value may hold bytes a
// server sent (a client library panicking over a hostile reply), so only a
// runtime error's own message, which Go writes, is quoted; any other value
// is named by its type. The value itself is for logs (Detail).
type PanicError struct {
	Value any
	Stack []byte

	claimed atomic.Bool
}

func (e *PanicError) Error() string { return "panic: " + e.Summary() }

// Summary is a short printable description of the panic without its raw
// value: "runtime error: index out of range [3] with length 3", or
// "a panic with a value of type string".
func (e *PanicError) Summary() string {
	var rt runtime.Error
	if err, ok := e.Value.(error); ok && errors.As(err, &rt) {
		return printable(redact.Truncate(rt.Error(), 120))
	}
	return fmt.Sprintf("a panic with a value of type %T", e.Value)
}

// Detail is the panicked value quoted and cut to 500 bytes, for the log
// (whose handler redacts configured secrets), never for a user.
func (e *PanicError) Detail() string {
	return strconv.Quote(redact.Truncate(fmt.Sprint(e.Value), 500))
}

// Claim reports whether the caller is the first to claim the panic. A probe
// shared by concurrent callers hands them all the same PanicError; the one
// that claims it logs and counts it, so one panic is one log line.
func (e *PanicError) Claim() bool { return e.claimed.CompareAndSwap(false, true) }

// Safely runs f and returns its error, or a *PanicError when f panics, so a
// panic in one probe, command or job fails only that one. Goroutines the
// bot starts run their body through it: a panic in a goroutine nobody
// recovers ends the whole process.
func Safely(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			stack := debug.Stack()
			if len(stack) > maxStack {
				stack = stack[:maxStack]
			}
			err = &PanicError{Value: v, Stack: stack}
		}
	}()
	return f()
}

// AsPanic returns the *PanicError in err's chain, if there is one.
func AsPanic(err error) (*PanicError, bool) {
	var pe *PanicError
	ok := errors.As(err, &pe)
	return pe, ok
}

// printable replaces what a terminal or chat client could interpret.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return '?'
	}, s)
}
