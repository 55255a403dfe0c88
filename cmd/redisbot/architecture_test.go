package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The import directions of docs/architecture.md, checked on every package of
// the module. A rule names who may import what; the doc explains why.
const module = "github.com/redisbot/redisbot"

// testKits are packages that start or fake servers for tests. Product code
// never imports them: only tests, other kits, scripts and the demo do.
var testKits = []string{
	"handlers/redistest",
	"handlers/resptest",
	"handlers/keyspace/scantest",
	"handlers/topology/topotest",
	"bot/slacktest",
	"bot/alertmanager/amtest",
}

// thirdParty says which packages may import an adapter library: the Slack
// client lives in the Slack transport, its renderer and its outbox, Redis clients where
// Redis is spoken, the embedded store in the store, the plotting library in
// the charts. cmd/ and scripts/ wire everything and may import anything.
var thirdParty = map[string][]string{
	"github.com/slack-go/slack":        {"bot/slackbot", "bot/outbox", "bot/blockkit", "bot/slacktest"},
	"github.com/redis/go-redis":        {"handlers/probe", "handlers/keyspace", "handlers/remedy", "handlers/topology", "handlers/redistest", "handlers/topology/topotest", "bot/store"},
	"go.etcd.io/bbolt":                 {"bot/store"},
	"gonum.org/v1/plot":                {"bot/charts"},
	"github.com/charmbracelet":         {"bot/terminal"},
	"github.com/go-viper/mapstructure": {},
	"gopkg.in/yaml.v3":                 {},
	"github.com/spf13/cobra":           {},
	"github.com/robfig/cron":           {},
}

// importAllowed reports whether package from (a path inside the module) may
// import path imp, and why not. Test files follow the layer rules but not
// the adapter-library ones, and may read cmd/'s defaults.
func importAllowed(from, imp string, testFile bool) (bool, string) {
	if from == "cmd" || strings.HasPrefix(from, "cmd/") || strings.HasPrefix(from, "scripts/") {
		return true, ""
	}
	if rel, ok := strings.CutPrefix(imp, module+"/"); ok {
		if isKit(rel) && !testFile && !isKit(from) {
			return false, "a test kit is imported only by tests, other kits, scripts and the demo"
		}
		switch {
		case strings.HasPrefix(rel, "cmd/") && !testFile:
			return false, "nothing imports cmd/: it only wires"
		case layer(from) == "handlers" && layer(rel) != "handlers":
			return false, "handlers/ is the domain: it imports no runtime, transport or runbook package"
		case from == "runbooks" && layer(rel) != "handlers":
			return false, "runbooks/ imports only the domain"
		case rel == "bot/slackbot" && !testFile:
			return false, "the Slack transport is imported only by cmd/ (wiring)"
		}
		return true, ""
	}
	if testFile {
		// Tests drive real servers and fakes with whatever client suits.
		return true, ""
	}
	for lib, allowed := range thirdParty {
		if imp == lib || strings.HasPrefix(imp, lib+"/") {
			if slices.Contains(allowed, from) {
				return true, ""
			}
			return false, lib + " is used only in " + strings.Join(allowed, ", ") + " (and cmd/, which wires)"
		}
	}
	return true, ""
}

func isKit(rel string) bool { return slices.Contains(testKits, rel) }

// layer is a package's top-level directory: handlers, bot, runbooks, cmd.
func layer(rel string) string {
	top, _, _ := strings.Cut(rel, "/")
	return top
}

func TestImportDirections(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	fset := token.NewFileSet()
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		testFile := strings.HasSuffix(path, "_test.go")
		for _, spec := range f.Imports {
			imp, _ := strconv.Unquote(spec.Path.Value)
			if ok, why := importAllowed(rel, imp, testFile); !ok {
				file, _ := filepath.Rel(root, path)
				t.Errorf("%s imports %s: %s (docs/architecture.md)", file, imp, why)
			}
			checked++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Fatalf("checked only %d imports: the walk missed the module", checked)
	}
}

// The rules must bite: each case is an import the architecture forbids.
func TestImportDirectionsRefuse(t *testing.T) {
	for _, c := range []struct {
		from, imp string
		test      bool
	}{
		{"handlers", module + "/bot/store", false},
		{"handlers/probe", module + "/runbooks", false},
		{"handlers/probe", "github.com/slack-go/slack", false},
		{"bot/sweep", module + "/cmd/redisbot/config", false},
		{"bot/sweep", module + "/bot/slackbot", false},
		{"bot/sweep", module + "/handlers/resptest", false},
		{"bot/sweep", "go.etcd.io/bbolt", false},
		{"runbooks", module + "/bot/blockkit", false},
		{"bot/charts", "github.com/slack-go/slack", false},
	} {
		if ok, _ := importAllowed(c.from, c.imp, c.test); ok {
			t.Errorf("%s importing %s was allowed", c.from, c.imp)
		}
	}
	for _, c := range []struct{ from, imp string }{
		{"bot/sweep", module + "/bot/store"},
		{"bot/slackbot", "github.com/slack-go/slack/socketmode"},
		{"cmd/redisbot", module + "/bot/slackbot"},
		{"handlers/probe", module + "/handlers/resplimit"},
	} {
		if ok, why := importAllowed(c.from, c.imp, false); !ok {
			t.Errorf("%s importing %s was refused: %s", c.from, c.imp, why)
		}
	}
}
