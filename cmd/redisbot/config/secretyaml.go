package config

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Secret values in the YAML itself.
//
// An unquoted password is read by YAML's rules, not as typed, and the
// operator is rarely told: "*Pa55w0rd" is an alias (and the parse error quotes
// it), "&pw" an anchor on an empty value, "#pw" a comment and "pw #x" the
// password "pw". So a secret value (password, app_token, bot_token, any
// *_token, redis_url: see isSecretKey) that YAML would turn into something
// other than the text written is an error that names the key and asks for
// quotes, without showing the value:
//
//   - an alias (*x), an anchor (&x) or a tag (!x, !!int x);
//   - a comment on the line of an unquoted value: "# x" may be part of the
//     password, so the comment goes on a line of its own or the value in
//     quotes;
//   - an unquoted value that YAML reads as another type and that does not
//     read back as written: 0x1F (31), 0123 (83), 1e3 (1000), True, ~, null,
//     2001-12-14. One that does read back as written (123456, true, 1.5) is
//     taken as the text written, "123456", as the operator meant.
//
// An empty value ("password:" and nothing else) is no password, as before.
//
// In flow style, {password: abc, def} is the password "abc" and a key "def"
// that YAML made of the rest of the line: an unknown key after an unquoted
// secret on its line is reported without its name (followsSecret).

// isSecretKey reports whether a key (the last part of its path, lower-cased)
// holds a secret: a password, a token or the store's Redis URL, whatever
// Config.Secrets would return. *_file and *_env keys hold where the secret
// is, not the secret.
func isSecretKey(name string) bool {
	return name == "password" || strings.HasSuffix(name, "_password") ||
		name == "token" || strings.HasSuffix(name, "_token") ||
		name == "redis_url"
}

// lastKey is the last part of a key path: instances[0].password -> password.
func lastKey(key string) string {
	return key[strings.LastIndexAny(key, ".]")+1:]
}

// checkSecretValues records a problem for every secret value in doc that
// YAML reads as something other than its text. It rewrites doc so that
// decoding it matches what was decided: a refused value becomes "" (one
// problem per mistake, not a second one from the decoder), and an unquoted
// number or boolean that reads back as written becomes that text.
func (l *loader) checkSecretValues(doc *yaml.Node) {
	walkKeys(doc, func(key string, name, value *yaml.Node) {
		if name == nil || !isSecretKey(lastKey(key)) {
			return
		}
		if value.Kind == yaml.ScalarNode && value.Style&quotedOrBlock == 0 {
			if col, ok := l.plainSecrets[value.Line]; !ok || value.Column < col {
				l.plainSecrets[value.Line] = value.Column
			}
		}
		msg, asText := secretValueProblem(name, value)
		switch {
		case msg != "":
			l.p.decodeFailed(key, errors.New(msg))
			*value = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Line: value.Line, Column: value.Column}
		case asText:
			value.Tag = "!!str"
		}
	})
}

// quotedOrBlock are the styles of a scalar whose text YAML takes as written.
const quotedOrBlock = yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle | yaml.LiteralStyle | yaml.FoldedStyle

// unknownAfterSecret is the problem with an unknown key that followsSecret.
const unknownAfterSecret = `unknown key after an unquoted secret on the same line, not shown: in {...} YAML ends an unquoted value at ", " and may have made a key of the rest: quote the secret`

// followsSecret reports whether key comes after an unquoted secret value on
// the same line. In flow style, {password: abc, def} is the password "abc"
// and a key "def", part of the secret the operator meant: a problem with
// that key must not name it.
func (l *loader) followsSecret(key string) bool {
	pos, ok := l.p.pos[key]
	if !ok {
		return false
	}
	col, ok := l.plainSecrets[pos>>20]
	return ok && pos&(1<<20-1) > col
}

// Problems with a secret value, worded so that they never need the value.
const (
	secretAlias   = "YAML reads a value starting with * as an alias: quote the value"
	secretAnchor  = "YAML reads a value starting with & as an anchor: quote the value"
	secretTag     = "YAML reads a value starting with ! as a tag: quote the value"
	secretComment = "YAML reads # and the rest of the line as a comment: quote the value, or put the comment on a line of its own"
)

// secretValueProblem says what is wrong with the value node of the secret
// key name, or, with asText, that it is an unquoted number or boolean to be
// taken as the text written.
func secretValueProblem(name, v *yaml.Node) (msg string, asText bool) {
	switch {
	case v.Kind == yaml.AliasNode:
		return secretAlias, false
	case v.Kind != yaml.ScalarNode:
		return "", false // a list or a mapping: the decoder says what it expected
	case v.Anchor != "":
		return secretAnchor, false
	case v.Style&yaml.TaggedStyle != 0 && v.ShortTag() != "!!str":
		return secretTag, false
	case v.Style&quotedOrBlock != 0:
		return "", false // quoted, or a block: taken as written
	case v.LineComment != "" || name.LineComment != "" && name.Line == v.Line:
		// "password: #pw" puts the comment on the key, "pw #x" on the
		// value; a comment after "password:" with the value on the next
		// line truncates nothing.
		return secretComment, false
	}
	var what string
	switch v.ShortTag() {
	case "!!str":
		return "", false
	case "!!null":
		if v.Value == "" {
			return "", false // nothing written: no secret
		}
		what = "null (no value)"
	case "!!int":
		what = "an integer"
	case "!!float":
		what = "a number"
	case "!!bool":
		what = "a boolean"
	case "!!timestamp":
		what = "a timestamp"
	default:
		what = "something other than text"
	}
	if readsBack(v) {
		return "", true
	}
	return "YAML reads this unquoted value as " + what + ", not as the text written: quote it", false
}

// readsBack reports whether a plain scalar that YAML resolves to a number or
// a boolean prints back as it was written: 123456 and true do, 0x1F, 0123,
// 1e3, 1_000 and True do not.
func readsBack(v *yaml.Node) bool {
	var x any
	if err := v.Decode(&x); err != nil {
		return false
	}
	var s string
	switch x := x.(type) {
	case bool:
		s = strconv.FormatBool(x)
	case int:
		s = strconv.Itoa(x)
	case int64:
		s = strconv.FormatInt(x, 10)
	case uint64:
		s = strconv.FormatUint(x, 10)
	case float64:
		s = strconv.FormatFloat(x, 'g', -1, 64)
	default:
		return false
	}
	return s == v.Value
}

// Parse errors.
//
// yaml.v3 quotes parts of the document in some errors ("unknown anchor
// 'Pa55w0rd' referenced", "cannot decode !!str `pw` as a !!int"), and a file
// that does not parse has no node tree to say which value is a secret. So the
// raw lines are scanned for secret keys instead, and whatever follows them
// is taken out of the error.

// secretKeyPattern finds a secret key followed by its colon anywhere in a
// line, in block ("password: x") or flow style ("{password: x}",
// {"password":"x"}).
var secretKeyPattern = regexp.MustCompile(`(?i)(?:^|[\s{,\[?-])["']?([a-z0-9_]*(?:password|token)|redis_url)["']?[ \t]*:`)

// unknownAnchorPattern is yaml.v3's error for an alias with no anchor.
var unknownAnchorPattern = regexp.MustCompile(`unknown anchor '(.*)' referenced`)

// rawSecret is what follows a secret key on one line of the file.
type rawSecret struct {
	line  int    // 1-based
	key   string // the key as written, lower-cased
	value string // the rest of the line, trimmed
}

// rawSecrets finds the secret keys of a file by its lines.
func rawSecrets(data []byte) []rawSecret {
	var out []rawSecret
	for i, line := range strings.Split(string(data), "\n") {
		for _, m := range secretKeyPattern.FindAllStringSubmatchIndex(line, -1) {
			out = append(out, rawSecret{
				line:  i + 1,
				key:   strings.ToLower(line[m[2]:m[3]]),
				value: strings.TrimSpace(line[m[1]:]),
			})
		}
	}
	return out
}

// alias is the anchor name of a value written as an alias (*name), or "".
func (s rawSecret) alias() string {
	name, ok := strings.CutPrefix(s.value, "*")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(name, " \t,[]{}"); i >= 0 {
		name = name[:i]
	}
	return name
}

// candidates are the strings of the value that an error might quote: the
// whole rest of the line, the value before a comment or a flow indicator,
// and each word with or without its YAML indicator and quotes.
func (s rawSecret) candidates() []string {
	v := s.value
	out := []string{v}
	if i := strings.Index(v, " #"); i >= 0 {
		out = append(out, strings.TrimSpace(v[:i]))
	}
	if i := strings.IndexAny(v, ",]}"); i >= 0 {
		out = append(out, strings.TrimSpace(v[:i]))
	}
	for _, f := range strings.FieldsFunc(v, func(r rune) bool {
		return r == ' ' || r == '\t' || r == ',' || strings.ContainsRune("[]{}", r)
	}) {
		out = append(out, f, strings.Trim(strings.TrimLeft(f, "*&!"), `"'`))
	}
	return out
}

// minCutAnywhere is the length from which a secret is cut from an error even
// inside a longer word: a string that long is unlikely to be part of an
// unrelated word by chance.
const minCutAnywhere = 4

// notShown replaces a secret in an error. Until every candidate is cut,
// cut stands in for it, so that a later candidate cannot match in its text.
const (
	notShown = "(not shown)"
	cut      = '\x00'
)

// redactYAMLError rewrites a yaml.v3 error message so that it shows no
// secret value from data. An alias with no anchor as a secret's value gets
// the same advice as checkSecretValues gives; otherwise every candidate
// value of a secret key is cut out, and so is anything quoted that looks
// like a token or a URL with credentials (a key pasted in the wrong place).
func redactYAMLError(msg string, data []byte) string {
	secrets := rawSecrets(data)
	if m := unknownAnchorPattern.FindStringSubmatch(msg); m != nil {
		for _, s := range secrets {
			if s.alias() == m[1] {
				return fmt.Sprintf("line %d: %s: %s", s.line, s.key, secretAlias)
			}
		}
	}
	var cands []string
	for _, s := range secrets {
		for _, c := range s.candidates() {
			if strings.IndexFunc(c, isAlnum) >= 0 && !strings.ContainsRune(c, cut) && !slices.Contains(cands, c) {
				cands = append(cands, c)
			}
		}
	}
	// Longest first, so that a value is cut whole rather than word by word.
	slices.SortStableFunc(cands, func(a, b string) int { return len(b) - len(a) })
	for _, c := range cands {
		msg = replaceWord(msg, c)
	}
	msg = strings.ReplaceAll(msg, string(cut), notShown)
	return quotedPattern.ReplaceAllStringFunc(msg, func(q string) string {
		if hidden := hideSecret(q[1 : len(q)-1]); hidden != "" {
			return hidden
		}
		return q
	})
}

// quotedPattern is a quoted part of a yaml.v3 error: "key", 'anchor',
// `value`.
var quotedPattern = regexp.MustCompile("\"[^\"]*\"|'[^']*'|`[^`]*`")

// replaceWord replaces every occurrence of s in msg with cut. A short s
// (under minCutAnywhere bytes) is replaced only where it is not part of a
// longer word, so that a password such as "pw" does not eat the middle of
// other words; a longer one is replaced wherever it is, as part of an anchor
// name for instance. The line and column numbers of yaml.v3's messages are
// kept: they are never the secret, whatever it is.
func replaceWord(msg, s string) string {
	var b strings.Builder
	for {
		i := strings.Index(msg, s)
		if i < 0 {
			b.WriteString(msg)
			return b.String()
		}
		end := i + len(s)
		before, after := rune(' '), rune(' ')
		if i > 0 {
			before = rune(msg[i-1])
		}
		if end < len(msg) {
			after = rune(msg[end])
		}
		whole := len(s) >= minCutAnywhere || !(isAlnum(before) && isAlnum(rune(s[0]))) && !(isAlnum(after) && isAlnum(rune(s[len(s)-1])))
		position := strings.Trim(s, "0123456789") == "" &&
			(strings.HasSuffix(msg[:i], "line ") || strings.HasSuffix(msg[:i], "column "))
		if whole && !position {
			b.WriteString(msg[:i])
			b.WriteRune(cut)
		} else {
			b.WriteString(msg[:end])
		}
		msg = msg[end:]
	}
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}
