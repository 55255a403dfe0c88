package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/redisbot/redisbot/handlers/redistest"
)

// check-config warns (exit 1) when the Redis store keeps nothing across a
// restart, or will not say; a server with AOF passes.
func TestCheckStoreDurability(t *testing.T) {
	srv := redistest.StartT(t)
	inst := "instances:\n" + instanceYAML("cache-1", srv.Addr)
	for _, tc := range []struct {
		name    string
		args    []string
		user    string
		warning string
		code    int
	}{
		{"no persistence", nil, "", "the Redis server persists nothing (appendonly no, no save schedule)", exitWarning},
		{"aof", []string{"--appendonly", "yes"}, "", "", exitOK},
		{"rdb", []string{"--save", "3600 1"}, "", "", exitOK},
		{"config refused", []string{"--appendonly", "yes"}, "bot:pw@", "could not read the server's persistence settings (CONFIG GET appendonly and save refused)", exitWarning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := redistest.StartT(t, tc.args...)
			if tc.user != "" {
				c := state.Client()
				defer c.Close()
				if err := c.Do(context.Background(), "ACL", "SETUSER", "bot", "on", ">pw", "~*", "+@all", "-config").Err(); err != nil {
					t.Fatal(err)
				}
			}
			cfg := writeConfig(t, inst+"store:\n  redis_url: redis://"+tc.user+state.Addr+"/0\n")
			text := runCLI(t, nil, "check-config", "--config", cfg)
			res := runCLI(t, nil, "check-config", "--config", cfg, "--json")
			var j struct {
				Store struct {
					Status  string `json:"status"`
					Warning string `json:"warning"`
				} `json:"store"`
			}
			if err := json.Unmarshal([]byte(res.stdout), &j); err != nil {
				t.Fatalf("%v: %s", err, res.stdout)
			}
			if j.Store.Status != "ok" || !strings.HasPrefix(j.Store.Warning, tc.warning) || (tc.warning == "") != (j.Store.Warning == "") {
				t.Errorf("store = %+v, want ok and warning %q", j.Store, tc.warning)
			}
			if res.code != tc.code || text.code != tc.code {
				t.Errorf("exit %d (text %d), want %d\n%s", res.code, text.code, tc.code, text.stdout)
			}
			if tc.warning != "" && !strings.Contains(text.stdout, "\n  warning: "+tc.warning) {
				t.Errorf("text lacks the warning:\n%s", text.stdout)
			}
			if strings.Contains(text.stdout+res.stdout, ":pw@") {
				t.Error("the store password in the output")
			}
		})
	}
}
