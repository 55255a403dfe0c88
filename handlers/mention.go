package handlers

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Mention is how a mention of the bot, or a direct message to it, reads.
type Mention struct {
	// Command is what to run. Its Verb is empty when the text starts with
	// no verb and names no instance: the transport answers with help.
	Command Command
	// Inferred is set when the text was free text naming an instance, so
	// the transport says how it read it ("Reading this as `diagnose x`")
	// instead of acting on a guess silently.
	Inferred bool
	// Closest are the verbs nearest the text's first word, for the help
	// that answers text nothing could be made of.
	Closest []string
}

// helpVerbs are offered when no verb is close to what was typed: the ones a
// newcomer is most likely to want.
var helpVerbs = []string{"diagnose", "fleet", "help"}

// ReadMention reads chat text addressed to the bot. Text starting with one
// of verbs parses as that command (ParseCommand's errors included). Other
// text that names one of instances as a whole word reads as `diagnose` on
// it: names match case-insensitively, longest first, and nothing else in
// the text is ever taken for an instance or a host. instances are the names
// the asker may see (the channel's scope), so a name outside it is not read.
func ReadMention(text string, verbs, instances []string) (Mention, error) {
	fields := strings.Fields(text)
	if len(fields) == 0 || slices.Contains(verbs, strings.ToLower(fields[0])) {
		cmd, err := ParseCommand(text)
		return Mention{Command: cmd}, err
	}
	if len(text) > MaxCommandLength {
		return Mention{}, &UsageError{Msg: fmt.Sprintf("message is %d characters long; the limit is %d", len(text), MaxCommandLength)}
	}
	if name, ok := namedInstance(text, instances); ok {
		return Mention{Command: Command{Verb: "diagnose", Args: []string{name}}, Inferred: true}, nil
	}
	closest := Closest(strings.ToLower(fields[0]), verbs, 3)
	if len(closest) == 0 {
		for _, v := range helpVerbs {
			if slices.Contains(verbs, v) {
				closest = append(closest, v)
			}
		}
	}
	return Mention{Closest: closest}, nil
}

// namedInstance returns the longest of names that text contains as a whole
// word, compared case-insensitively.
func namedInstance(text string, names []string) (string, bool) {
	lower := strings.ToLower(text)
	byLength := slices.Clone(names)
	slices.SortStableFunc(byLength, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	for _, name := range byLength {
		needle := strings.ToLower(name)
		if needle == "" {
			continue
		}
		for from := 0; from <= len(lower)-len(needle); {
			i := strings.Index(lower[from:], needle)
			if i < 0 {
				break
			}
			start, end := from+i, from+i+len(needle)
			if wordStartsAt(lower, start) && wordEndsAt(lower, end) {
				return name, true
			}
			from = start + 1
		}
	}
	return "", false
}

// nameRune reports whether r can continue an instance name: a match next
// to one is part of a longer word ("orders-primary-2", "xorders").
func nameRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' || r == '.'
}

func wordStartsAt(s string, i int) bool {
	if i == 0 {
		return true
	}
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	return !nameRune(r)
}

// wordEndsAt lets a sentence's full stop end a name ("look at cache-1.")
// while a dot that continues it ("cache-1.example.com") does not.
func wordEndsAt(s string, i int) bool {
	for i < len(s) && s[i] == '.' {
		i++
	}
	if i == len(s) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return !nameRune(r)
}
