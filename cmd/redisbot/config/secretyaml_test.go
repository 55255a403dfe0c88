package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretAsWritten: an unquoted secret that YAML reads as a number or a
// boolean is taken as the text written when it reads back the same; quoted
// and block values are taken as they are, whatever they hold; "password:"
// with nothing after it is no password.
func TestSecretAsWritten(t *testing.T) {
	doc := `instances:
  - name: a
    addr: 'x:1'
    password: 123456
    remediation:
      password: true
  - name: b
    addr: 'x:2'
    password: 1.5
    remediation:
      password: "0x1F" # quoted: the comment ends nothing
  - name: c
    addr: 'x:3'
    password: '*not-an-alias #not-a-comment'
    remediation:
      password: !!str 0123
  - name: d
    addr: 'x:4'
    password: # a comment after the key, the value on the next line
      plain-pw
    remediation:
      password: |
        block #pw
  - name: e
    addr: 'x:5'
    password:
slack:
  app_token: "xapp-1" # quoted
store:
  redis_url: 'redis://:p%23w@state:6379/0'
`
	cfg, err := Load(t.Context(), writeConfig(t, doc), env(nil))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for _, want := range []struct{ name, password, remediation string }{
		{"a", "123456", "true"},
		{"b", "1.5", "0x1F"},
		{"c", "*not-an-alias #not-a-comment", "0123"},
		{"d", "plain-pw", "block #pw\n"},
		{"e", "", ""},
	} {
		in, _ := cfg.Instance(want.name)
		if in.Password != want.password || in.Remediation.Password != want.remediation {
			t.Errorf("%s: passwords %q, %q; want %q, %q", want.name, in.Password, in.Remediation.Password, want.password, want.remediation)
		}
	}
	if cfg.Slack.AppToken != "xapp-1" || cfg.Store.RedisURL != "redis://:p%23w@state:6379/0" {
		t.Errorf("app_token %q, redis_url %q", cfg.Slack.AppToken, cfg.Store.RedisURL)
	}
}

// TestSecretNotReadBack: unquoted values that YAML changes are refused, each
// with its kind and key, never with the value.
func TestSecretNotReadBack(t *testing.T) {
	for value, kind := range map[string]string{
		"0x1F":       "an integer", // 31
		"0123":       "an integer", // 83
		"0o17":       "an integer",
		"1_000":      "an integer", // 1000
		"+12":        "an integer",
		"1e3":        "a number", // 1000
		"1.50":       "a number",
		".inf":       "a number",
		"True":       "a boolean",
		"FALSE":      "a boolean",
		"null":       "null (no value)",
		"~":          "null (no value)",
		"2001-12-14": "a timestamp",
	} {
		doc := "instances: [{name: a, addr: 'x:1', password: " + value + "}]\n"
		_, err := Load(t.Context(), writeConfig(t, doc), env(nil))
		want := "instances[0].password: YAML reads this unquoted value as " + kind + ", not as the text written: quote it"
		if err == nil || err.Error() != want {
			t.Errorf("%s: error = %v, want %q", value, err, want)
		}
	}
}

func TestIsSecretKey(t *testing.T) {
	for _, k := range []string{"password", "app_token", "bot_token", "token", "admin_password", "redis_url"} {
		if !isSecretKey(k) {
			t.Errorf("isSecretKey(%q) = false", k)
		}
	}
	for _, k := range []string{"password_file", "password_env", "app_token_file", "redis_url_env", "username", "tokens", "passwords"} {
		if isSecretKey(k) {
			t.Errorf("isSecretKey(%q) = true", k)
		}
	}
}

// TestRedactYAMLError: parse errors lose the values of secret keys, and
// only them: line numbers, other words and other values stay.
func TestRedactYAMLError(t *testing.T) {
	for _, tc := range []struct {
		name, doc, msg, want string
	}{
		{
			"alias of a secret, block style",
			"instances:\n  - name: a\n    password: *Pa55w0rd\n",
			"yaml: unknown anchor 'Pa55w0rd' referenced",
			"line 3: password: YAML reads a value starting with * as an alias: quote the value",
		},
		{
			"alias of a secret, flow style",
			`slack: {"bot_token":*xoxb-1, api_url: x}`,
			"yaml: unknown anchor 'xoxb-1' referenced",
			"line 1: bot_token: YAML reads a value starting with * as an alias: quote the value",
		},
		{
			"alias of another key on a secret's line",
			"instances: [{password: pw, addr: *pw}]",
			"yaml: unknown anchor 'pw' referenced",
			"yaml: unknown anchor '(not shown)' referenced",
		},
		{
			"a short secret is cut as a word only",
			"password: pw\nx: !!int pw\n",
			"yaml: cannot decode !!str `pw` as a !!int; pwned password",
			"yaml: cannot decode !!str `(not shown)` as a !!int; pwned password",
		},
		{
			"a number is kept where it is a line number",
			"password: 4\nx: !!int 4\n",
			"line 4: cannot decode !!str `4` as a !!int",
			"line 4: cannot decode !!str `(not shown)` as a !!int",
		},
		{
			"the value before a comment and whole",
			"redis_url: redis://:pw@h:1 #x y\n",
			"a redis://:pw@h:1 b redis://:pw@h:1 #x y c #x",
			"a (not shown) b (not shown) c (not shown)",
		},
		{
			"a token quoted as a key",
			"a: 1\n",
			`line 3: mapping key "xoxb-1-2" already defined at line 2`,
			`line 3: mapping key (a Slack token, not shown) already defined at line 2`,
		},
		{
			"no secret: nothing changes",
			"username: bob\n",
			"yaml: unknown anchor 'bob' referenced",
			"yaml: unknown anchor 'bob' referenced",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := redactYAMLError(tc.msg, []byte(tc.doc)); got != tc.want {
				t.Errorf("redactYAMLError:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestParseErrorsHideSecrets loads files that do not parse because of a
// secret's value, and checks the value never shows.
func TestParseErrorsHideSecrets(t *testing.T) {
	const secret = "Pa55w0rd-SECRET"
	for _, doc := range []string{
		"instances: [{name: a, addr: 'x:1', password: *" + secret + "}]",
		"instances:\n  - name: a\n    password: *" + secret + "\n",
		"instances:\n  - name: a\n    password: *" + secret + " #x\n",
		"instances:\n  - name: a\n    Password: &" + secret + "\n    addr: *" + secret + "x\n",
		"slack: {bot_token: *" + secret + "}",
		"store:\n  redis_url: *" + secret + "\n",
		"instances: [{name: a, password: " + secret + ", addr: *" + secret + "}]",
		"instances:\n  - name: a\n    password: !!int " + secret + "\n",
		"instances:\n  - name: a\n    password: !!binary " + secret + "\n",
		"instances:\n  - name: a\n    password: !!float " + secret + "\n",
		"instances:\n  - name: a\n    password: &x " + secret + "\n    addr: *x\n    username: *x\n",
		"instances:\n  - name: a\n    password: &" + secret + " 1\n  - *" + secret + "\n",
	} {
		checkNoSecret(t, secret, doc, env(nil))
		checkNoSecret(t, strings.TrimSuffix(secret, "-SECRET"), doc, env(nil))
	}
}

// FuzzSecretNotShown writes a secret after a secret key in the ways YAML
// reads differently (alias, anchor, tag, comment, quotes, flow) and checks
// that no error shows it. The secret is before + secretMark + after, and
// the check is for the mark, which no message has: a check for the whole
// secret would also find a short one such as "redi" in "redis://".
func FuzzSecretNotShown(f *testing.F) {
	for _, s := range [][2]string{{"Pa55", "w0rd"}, {"xoxb-1-", ""}, {"pw", " #x"}, {"0x", "1F"}, {"a'b", "\"c"}, {"*&!", ""}, {"redis://:", "@h:1"}} {
		for form := range uint8(len(secretForms)) {
			f.Add(form, s[0], s[1])
		}
	}
	f.Fuzz(func(t *testing.T, form uint8, before, after string) {
		secret := before + secretMark + after
		if strings.ContainsAny(secret, "\r\n\x00") || strings.TrimSpace(secret) != secret {
			return
		}
		doc := fmt.Sprintf(secretForms[int(form)%len(secretForms)], secret)
		path := filepath.Join(t.TempDir(), "config.yml")
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(t.Context(), path, env(nil))
		if err != nil && strings.Contains(strings.ToLower(err.Error()), strings.ToLower(secretMark)) {
			t.Errorf("error for %q shows the secret:\n%s", doc, err)
		}
	})
}

// secretMark is in every secret FuzzSecretNotShown writes.
const secretMark = "Q7zX"

// secretForms place a secret (%[1]s) where YAML may read it as something
// else than text.
var secretForms = []string{
	"instances:\n  - name: a\n    addr: 'x:1'\n    password: %[1]s\n",
	"instances:\n  - name: a\n    addr: 'x:1'\n    password: *%[1]s\n",
	"instances:\n  - name: a\n    addr: 'x:1'\n    password: &%[1]s\n",
	"instances:\n  - name: a\n    addr: 'x:1'\n    password: !%[1]s\n",
	"instances:\n  - name: a\n    addr: 'x:1'\n    password: !!int %[1]s\n",
	"instances:\n  - name: a\n    addr: 'x:1'\n    password: \"%[1]s\"\n",
	"instances:\n  - name: a\n    addr: 'x:1'\n    password: '%[1]s'\n",
	"instances: [{name: a, addr: 'x:1', password: %[1]s}]\n",
	"instances: [{name: a, password: *%[1]s, addr: 'x:1'}]\n",
	"slack: {bot_token: %[1]s}\ninstances: [{name: a, addr: 'x:1'}]\n",
	"store:\n  redis_url: %[1]s\ninstances: [{name: a, addr: 'x:1'}]\n",
}

// TestUnknownKeyAfterSecret: in flow style YAML ends an unquoted secret at
// ", " and makes a key of the rest; that key, part of the secret meant, is
// not named. Keys before the secret, or after a quoted one, are.
func TestUnknownKeyAfterSecret(t *testing.T) {
	hidden := "instances[0]: " + unknownAfterSecret
	for doc, want := range map[string]string{
		"instances: [{name: a, addr: 'x:1', password: abc, Q7zX: 1}]":   hidden,
		"instances: [{name: a, password: abc, Q7zX, addr: 'x:1'}]":      hidden,
		"instances: [{name: a, addr: 'x:1', passwd: 1, password: abc}]": "instances[0].passwd: unknown key (did you mean password?)",
		"instances: [{name: a, addr: 'x:1', password: 'abc', def: 1}]":  "instances[0].def: unknown key (did you mean db?)",
		// Anything after it on the line, even in another mapping.
		"instances: [{name: a, addr: 'x:1', password: abc}, {name: b, xyz: 1, addr: 'x:2'}]": "instances[1]: " + unknownAfterSecret,
	} {
		_, err := Load(t.Context(), writeConfig(t, doc), env(nil))
		if err == nil || err.Error() != want {
			t.Errorf("%s:\nerror %v\n want %s", doc, err, want)
		}
	}
}
