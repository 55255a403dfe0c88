package slacktest

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"
	"testing"
)

func mrkdwn(text string) string { return fmt.Sprintf(`{"type":"mrkdwn","text":%q}`, text) }
func plain(text string) string  { return fmt.Sprintf(`{"type":"plain_text","text":%q}`, text) }

func button(actionID, label, value string) string {
	return fmt.Sprintf(`{"type":"button","action_id":%q,"text":%s,"value":%q}`, actionID, plain(label), value)
}

func repeated(n int, item func(i int) string) string {
	items := make([]string, n)
	for i := range items {
		items[i] = item(i)
	}
	return strings.Join(items, ",")
}

func TestCheckBlocks(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name   string
		blocks string
		want   []string
	}{
		{"at the limits", `[` +
			`{"type":"header","block_id":"` + long(255) + `","text":` + plain(long(150)) + `},` +
			`{"type":"section","text":` + mrkdwn(long(3000)) + `,"fields":[` + repeated(10, func(int) string { return mrkdwn(long(2000)) }) + `]},` +
			`{"type":"context","elements":[` + repeated(10, func(int) string { return mrkdwn("c") }) + `]},` +
			`{"type":"actions","elements":[` + repeated(25, func(i int) string { return button(fmt.Sprint(i), long(75), long(2000)) }) + `]},` +
			`{"type":"actions","elements":[` + button(long(255), "ok", "v") + `,` + button("0", "same id as another block", "v") + `]}` +
			`]`, nil},
		{"too many blocks", `[` + repeated(51, func(int) string { return `{"type":"divider"}` }) + `]`,
			[]string{"51 blocks, limit 50"}},
		{"header", `[{"type":"header","text":` + plain(long(151)) + `},{"type":"header","text":` + mrkdwn("h") + `}]`,
			[]string{"blocks[0] (header) text is 151 characters, limit 150", `blocks[1] (header) text must be plain_text, not "mrkdwn"`}},
		{"header counts characters, not bytes", `[{"type":"header","text":` + plain(strings.Repeat("é", 150)) + `}]`, nil},
		{"section text", `[{"type":"section","text":` + mrkdwn(long(3001)) + `}]`,
			[]string{"blocks[0] (section) text is 3001 characters, limit 3000"}},
		{"section fields", `[{"type":"section","fields":[` + repeated(11, func(int) string { return plain("f") }) + `]},{"type":"section","fields":[` + mrkdwn(long(2001)) + `]}]`,
			[]string{"blocks[0] (section) has 11 fields, limit 10", "blocks[1] (section) fields[0] is 2001 characters, limit 2000"}},
		{"section accessory button", `[{"type":"section","text":` + mrkdwn("s") + `,"accessory":` + button("a", long(76), "v") + `}]`,
			[]string{"blocks[0] (section) accessory text is 76 characters, limit 75"}},
		{"context elements", `[{"type":"context","elements":[` + repeated(11, func(int) string { return plain("c") }) + `]}]`,
			[]string{"blocks[0] (context) has 11 elements, limit 10"}},
		{"actions elements", `[{"type":"actions","elements":[` + repeated(26, func(i int) string { return button(fmt.Sprint(i), "b", "v") }) + `]}]`,
			[]string{"blocks[0] (actions) has 26 elements, limit 25"}},
		{"button", `[{"type":"actions","elements":[` + button(long(256), "b", long(2001)) + `,{"type":"button","action_id":"u","text":` + plain("b") + `,"url":"` + long(3001) + `"}]}]`,
			[]string{
				"blocks[0] (actions) elements[0] action_id is 256 characters, limit 255",
				"blocks[0] (actions) elements[0] value is 2001 characters, limit 2000",
				"blocks[0] (actions) elements[1] url is 3001 characters, limit 3000",
			}},
		{"duplicate action_id in a block", `[{"type":"actions","elements":[` + button("go", "a", "1") + `,` + button("go", "b", "2") + `]}]`,
			[]string{`blocks[0] (actions) elements[1] action_id "go" is not unique in its block`}},
		{"block_id", `[{"type":"divider","block_id":"d"},{"type":"divider","block_id":"d"},{"type":"divider","block_id":"` + long(256) + `"}]`,
			[]string{`blocks[1] (divider) block_id "d" is not unique in the message`, "blocks[2] (divider) block_id is 256 characters, limit 255"}},
		{"mentions", `[{"type":"section","text":` + mrkdwn("<!channel> <!here|here> <!everyone> <!subteam^S1|oncall> <@U1> <@W2|bob> <U3> &lt;!here&gt; <#C1> <https://x|y>") + `},` +
			`{"type":"context","elements":[` + mrkdwn("by <@U4>") + `,` + plain("<!channel> in plain text does not notify") + `]}]`,
			[]string{
				"unescaped mention <!channel> in blocks[0] (section).text",
				"unescaped mention <!here|here> in blocks[0] (section).text",
				"unescaped mention <!everyone> in blocks[0] (section).text",
				"unescaped mention <!subteam^S1|oncall> in blocks[0] (section).text",
				"unescaped mention <@U1> in blocks[0] (section).text",
				"unescaped mention <@W2|bob> in blocks[0] (section).text",
				"unescaped mention <@U4> in blocks[1] (context).elements[0]",
			}},
		{"null", `null`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := checkBlocks(json.RawMessage(tc.blocks), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

func TestCheckBlocksAllowsListedMentions(t *testing.T) {
	allowed := func(m string) bool { ok, _ := path.Match("<@U*>", m); return ok }
	got, err := checkBlocks(json.RawMessage(`[{"type":"section","text":`+mrkdwn("<@U1> <!here>")+`}]`), allowed)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"unescaped mention <!here> in blocks[0] (section).text"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestCheckBlocksRejectsMalformedJSON(t *testing.T) {
	for _, blocks := range []string{`[{"type":`, `{"type":"section"}`, `"text"`} {
		if _, err := checkBlocks(json.RawMessage(blocks), nil); err == nil {
			t.Errorf("checkBlocks(%s) = nil error", blocks)
		}
	}
}

func TestCheckText(t *testing.T) {
	if got := checkText(strings.Repeat("x", maxMessageText), nil); len(got) != 0 {
		t.Errorf("text at the limit: %q", got)
	}
	got := checkText(strings.Repeat("x", maxMessageText+1)+" <!channel>", nil)
	want := []string{"text is 40012 characters; Slack truncates it at 40000", "unescaped mention <!channel> in text"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
