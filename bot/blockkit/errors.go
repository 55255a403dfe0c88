package blockkit

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/redisbot/redisbot/handlers"
)

// RenderError shows an error from the router to the user who sent the
// command. Usage errors and unknown instances are the user's to fix and are
// shown in full (escaped); anything else is the bot's problem, so the user
// sees only a generic line with a reference the log carries too (ErrorRef).
func RenderError(err error) Message {
	var usage *handlers.UsageError
	var unknown *handlers.UnknownInstanceError
	switch {
	case err == nil:
		return textMessage(":warning: Something went wrong (no error was given).")
	case errors.As(err, &usage):
		hint := "Try " + code("/redis help")
		if usage.Verb != "" && knownVerb(usage.Verb) && usage.Verb != "help" {
			hint = "Try " + code("/redis help "+usage.Verb)
		}
		return textMessage(":warning: "+Escape(usage.Msg), contextBlock(hint))
	case errors.As(err, &unknown):
		text := ":mag: Unknown instance " + code(truncRaw(unknown.Name)) + "."
		if len(unknown.Closest) > 0 {
			names := make([]string, len(unknown.Closest))
			for i, n := range unknown.Closest {
				names[i] = code(truncRaw(n))
			}
			text += " Did you mean " + strings.Join(names, ", ") + "?"
		}
		return textMessage(text, contextBlock(code("/redis list")+" shows the configured instances."))
	}
	return textMessage(":x: Something went wrong ("+requestSafe(err)+").",
		contextBlock("The details are in the bot's log; quote the reference when you report it."))
}

// requestSafe describes an internal error without its text, which may name
// hosts, files or the bot's internals.
func requestSafe(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "the request timed out, ref " + ErrorRef(err)
	case errors.Is(err, context.Canceled):
		return "the request was cancelled, ref " + ErrorRef(err)
	}
	return "internal error, ref " + ErrorRef(err)
}

// ErrorRef is the short reference RenderError shows for an internal error.
// The transport logs it next to the full error so the two can be matched.
func ErrorRef(err error) string {
	if err == nil {
		return "00000000"
	}
	h := fnv.New32a()
	h.Write([]byte(err.Error()))
	return fmt.Sprintf("%08x", h.Sum32())
}

func knownVerb(verb string) bool {
	_, ok := handlers.LookupVerb(verb)
	return ok
}

// RenderRefusal tells a user they may not do what they asked (the transport
// posts it ephemerally). The reason is escaped like any other text.
func RenderRefusal(reason string) Message {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		reason = "You are not allowed to do that."
	}
	return textMessage(":no_entry: " + Escape(reason))
}
