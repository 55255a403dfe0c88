package handlers

import (
	"bytes"
	"cmp"
	"encoding/json"
	"slices"
	"strings"

	"github.com/redisbot/redisbot/handlers/redact"
)

// Redacted is what a secret is replaced with, the same mark as
// redact.Secrets leaves.
const Redacted = redact.Mark

// Redactor removes a fixed set of secrets (every configured password and
// token) from text, in each form a renderer may have put them in: as is,
// escaped for Slack mrkdwn (&amp; &lt; &gt;), as a key name through
// Printable, and inside a JSON string (with and without HTML escaping, as
// encoding/json writes Block Kit). It is built once, a strings.Replacer,
// so redacting a message costs one pass over it; it is safe for
// concurrent use, and a nil *Redactor removes nothing. Text without a
// secret, nearly all of it, costs one strings.Contains per form (which is
// vectorised) and no copy: the Replacer's byte-by-byte walk runs only when
// a secret is there (BenchmarkRedactor).
//
// Where text is cut (Truncate) a secret must be redacted before the cut:
// a cut secret no longer matches.
type Redactor struct {
	secrets  []string
	forms    []string // every form of every secret, longest first
	replacer *strings.Replacer
}

// NewRedactor returns a Redactor of secrets; empty strings are ignored.
func NewRedactor(secrets ...string) *Redactor {
	r := &Redactor{}
	seen := map[string]bool{}
	var forms []string
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			forms = append(forms, s)
		}
	}
	for _, s := range secrets {
		if s == "" || slices.Contains(r.secrets, s) {
			continue
		}
		r.secrets = append(r.secrets, s)
		for _, f := range []string{s, mrkdwnEscape(s), Printable(s, 0)} {
			add(f)
			add(jsonInner(f, true))
			add(jsonInner(f, false))
		}
	}
	if len(forms) == 0 {
		return r
	}
	// strings.Replacer tries its old strings in argument order at each
	// position: the longest first, so a secret that contains another is
	// replaced whole.
	slices.SortStableFunc(forms, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		pairs = append(pairs, f, Redacted)
	}
	r.forms, r.replacer = forms, strings.NewReplacer(pairs...)
	return r
}

// Redact returns text with every form of every secret replaced by
// Redacted.
func (r *Redactor) Redact(text string) string {
	if r == nil {
		return text
	}
	for _, f := range r.forms {
		if strings.Contains(text, f) {
			return r.replacer.Replace(text)
		}
	}
	return text
}

// Holds reports whether text contains one of the secrets, in any form.
func (r *Redactor) Holds(text string) bool {
	return r.Redact(text) != text
}

// Len is how many secrets r removes.
func (r *Redactor) Len() int {
	if r == nil {
		return 0
	}
	return len(r.secrets)
}

// mrkdwnEscape is Slack's escaping of &, < and > (bot/blockkit.Escape,
// which handlers cannot import).
func mrkdwnEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// jsonInner is s as it appears inside a JSON string.
func jsonInner(s string, escapeHTML bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	if err := enc.Encode(s); err != nil {
		return s
	}
	out := strings.TrimSuffix(b.String(), "\n")
	return out[1 : len(out)-1]
}
