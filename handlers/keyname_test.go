package handlers

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestKeyPattern(t *testing.T) {
	long := strings.Repeat("a", 1<<20)
	longCut := strings.Repeat("a", maxPatternInput) + "…"
	tests := []struct {
		name, want string
	}{
		// The examples of the doc comment.
		{"session:8f14e45f-ceea-467f-a0e6-0123456789ab", "session:{id}"},
		{"user:42:profile", "user:{id}:profile"},
		{"cache/v2/item.1234", "cache/v2/item.{id}"},
		{"counter", "counter"},
		{"", ""},
		// Ids.
		{"session:8F14E45F-CEEA-467F-A0E6-0123456789AB", "session:{id}"},
		{"session:8f14e45fceea467fa0e60123456789ab", "session:{id}"},
		{"obj:5f1d7a3b9c2e4d6f8a0b1c2d", "obj:{id}"}, // Mongo ObjectID
		{"img:deadbeef", "img:deadbeef"},             // hex letters only read as a word
		{"img:deadbee1", "img:{id}"},
		{"tok:AbC123xYz789QwE456kk", "tok:{id}"},
		{"tok:V1StGXR8_Z5jdHi6B-myT", "tok:{id}"},      // nanoid
		{"job:01ARZ3NDEKTSV4RRFFQ69G5FAV", "job:{id}"}, // ULID
		{"cfg:user_preferences_v2", "cfg:user_preferences_v2"},
		{"cfg:userPreferencesV2Cache", "cfg:userPreferencesV2Cache"},
		{"order_1234", "order_{id}"},
		{"order-1234-items", "order-{id}-items"},
		{"user42:cart", "user42:cart"},
		// Numbers only.
		{"42", "{id}"},
		{"0", "{id}"},
		{"1700000000", "{id}"},
		{"3.14", "{id}.{id}"},
		{"-5", "-{id}"},
		// Words and dates.
		{"api:v2:en:home", "api:v2:en:home"},
		{"stats:2024-01-01:hits", "stats:{date}:hits"},
		{"stats:2024-01", "stats:{date}"},
		{"stats:20240101", "stats:{id}"},
		{"img/logo.png", "img/logo.png"},
		{"日本:42", "日本:{id}"},
		// Addresses.
		{"user:bob@example.com:cart", "user:{email}:cart"},
		{"user:@handle", "user:@handle"},
		{"conn:10.0.0.1:6379", "conn:{id}.{id}.{id}.{id}:{id}"},
		// Cluster hash tags.
		{"{user:1000}:following", "{user:{id}}:following"},
		{"{42}.cart", "{{id}}.cart"},
		{"{user1000}.following", "{user1000}.following"},
		{"{cart}:item:9", "{cart}:item:{id}"},
		{"{}", "{}"},
		// Separators only.
		{":::", ":::"},
		{"a//b..c", "a//b..c"},
		// Binary names.
		{"k:\x00\x01\x02", "k:{bin}"},
		{"k:\xff\xfe:v", "k:{bin}:v"},
		{"\x1b[31mred", "{bin}"},
		// Long names are cut after 256 bytes.
		{long, longCut},
		{"user:" + long, "user:" + strings.Repeat("a", maxPatternInput-5) + "…"},
		{strings.Repeat("1:", 300), strings.Repeat("{id}:", 51) + "…"},
		{"x:" + strings.Repeat("é", 200), "x:" + strings.Repeat("é", 127) + "…"}, // not cut inside a rune
		// Patterns fold to themselves.
		{"session:{id}", "session:{id}"},
		{"a…", "a…"},
		{"(other)", "(other)"},
	}
	for _, tt := range tests {
		got := KeyPattern(tt.name)
		if got != tt.want {
			t.Errorf("KeyPattern(%q) = %q, want %q", Printable(tt.name, 80), got, tt.want)
		}
		if again := KeyPattern(got); again != got {
			t.Errorf("KeyPattern(KeyPattern(%q)) = %q, want %q", Printable(tt.name, 80), again, got)
		}
	}
}

func TestPrintable(t *testing.T) {
	mb := strings.Repeat("x", 1<<20)
	tests := []struct {
		name string
		max  int
		want string
	}{
		{"user:42", 0, "user:42"},
		{"", 10, ""},
		{"<!channel> *bold* `code`", 0, "<!channel> *bold* `code`"}, // mrkdwn is escaped elsewhere
		{"a\nb\tc\rd", 0, `a\nb\tc\rd`},
		{"\x00\x07\x1b\x7f", 0, `\x00\x07\x1b\x7f`},
		{"k:\xff\xfe", 0, `k:\xff\xfe`},
		{"\xe2\x80", 0, `\xe2\x80`}, // a cut rune
		{"héllo wörld 日本", 0, "héllo wörld 日本"},
		{"\u202egnp.exe", 0, `\u202egnp.exe`}, // right-to-left override
		{"zero\u200bwidth", 0, `zero\u200bwidth`},
		{"\U000e0001", 0, `\U000e0001`},
		// Backslashes are doubled only before what would read as an escape.
		{`C:\dir\file`, 0, `C:\dir\file`},
		{`a\nb`, 0, `a\\nb`},
		{`a\x00`, 0, `a\\x00`},
		{`a\\b`, 0, `a\\\b`},
		{`end\`, 0, `end\`},
		// Cut by runes, "…" included in max.
		{"abcdef", 6, "abcdef"},
		{"abcdef", 5, "abcd…"},
		{"abcdef", 1, "…"},
		{"日本語テキスト", 4, "日本語…"},
		{"ab\x00cd", 4, "ab…"}, // an escape is not split
		{"ab\x00cd", 6, "ab…"},
		{"ab\x00cd", 8, `ab\x00cd`},
		{mb, 10, "xxxxxxxxx…"},
		{mb + "\x00", 5, "xxxx…"},
	}
	for _, tt := range tests {
		if got := Printable(tt.name, tt.max); got != tt.want {
			t.Errorf("Printable(%q, %d) = %q, want %q", tt.name[:min(len(tt.name), 40)], tt.max, got, tt.want)
		}
	}
	if got := Printable(mb, 0); got != mb {
		t.Errorf("Printable(1 MB, 0) has %d bytes, want the name unchanged", len(got))
	}
	bin := strings.Repeat("\xff", 1<<20)
	if got := Printable(bin, 0); got != strings.Repeat(`\xff`, 1<<20) {
		t.Errorf("Printable(1 MB of 0xff, 0) has %d bytes", len(got))
	}
}

func FuzzKeyPattern(f *testing.F) {
	for _, s := range []string{
		"", "user:42:profile", "session:8f14e45f-ceea-467f-a0e6-0123456789ab", "{user:1000}:following",
		"a@b.c", "10.0.0.1:6379", "order_1234", "\xff\x00", "…", "x…", "{{id}}", "{id}}", "{{id}",
		strings.Repeat("1:", 200), strings.Repeat("é", 200),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		p := KeyPattern(name)
		if len(p) > maxPatternOutput+len(patternCut) {
			t.Fatalf("KeyPattern(%q) has %d bytes", name, len(p))
		}
		if again := KeyPattern(p); again != p {
			t.Fatalf("KeyPattern(%q) = %q, but KeyPattern(%q) = %q", name, p, p, again)
		}
		if utf8.ValidString(name) && !utf8.ValidString(p) {
			t.Fatalf("KeyPattern(%q) = %q is not valid UTF-8", name, p)
		}
		if strings.Count(name, ":")+strings.Count(name, "/") < strings.Count(p, ":")+strings.Count(p, "/") {
			t.Fatalf("KeyPattern(%q) = %q has more fields than the name", name, p)
		}
	})
}

func FuzzPrintable(f *testing.F) {
	for _, s := range []string{"", "user:42", "a\nb", "\xff", `a\nb`, "日本語", "\u202e"} {
		f.Add(s, 5)
	}
	f.Fuzz(func(t *testing.T, name string, max int) {
		max %= 300
		p := Printable(name, max)
		if !utf8.ValidString(p) {
			t.Fatalf("Printable(%q, %d) = %q is not valid UTF-8", name, max, p)
		}
		if max > 0 && utf8.RuneCountInString(p) > max {
			t.Fatalf("Printable(%q, %d) = %q has %d runes", name, max, p, utf8.RuneCountInString(p))
		}
		for _, r := range p {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("Printable(%q, %d) = %q holds a control character", name, max, p)
			}
		}
	})
}

// TestKeyPatternFixedPoint folds random names made of the characters the
// rules care about; it checks what FuzzKeyPattern checks, on every run.
func TestKeyPatternFixedPoint(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []string{"a", "1", "F", "{", "}", ":", "/", ".", "_", "-", "@", "…", "\xff", "\x00", "Z", "9", "=", "+", `\`, "é", "\xe2"}
	var b strings.Builder
	for range 200_000 {
		b.Reset()
		for range rng.IntN(300) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		name := b.String()
		p := KeyPattern(name)
		if len(p) > maxPatternOutput+len(patternCut) {
			t.Fatalf("KeyPattern(%q) has %d bytes", name, len(p))
		}
		if again := KeyPattern(p); again != p {
			t.Fatalf("KeyPattern(%q) = %q, but KeyPattern(%q) = %q", name, p, p, again)
		}
	}
}
