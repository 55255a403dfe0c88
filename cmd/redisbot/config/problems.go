package config

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// keyError is one problem with one key. Its text is "key: problem", or
// "key: problem (from VAR)" when the value came from the environment.
type keyError struct {
	key string
	env string // environment variable the value came from, if any
	err error
}

func (e *keyError) Error() string {
	s := e.err.Error()
	if e.key != "" {
		s = e.key + ": " + s
	}
	if e.env != "" {
		s += " (from " + e.env + ")"
	}
	return s
}

func (e *keyError) Unwrap() error { return e.err }

// problems collects every problem found while loading, so that all of them
// are reported at once and in file order.
type problems struct {
	list []*keyError
	// failed holds keys whose value could not be decoded: they keep their
	// default and are not validated again, so one mistake gives one error.
	failed map[string]bool
	// fromEnv maps keys set by the environment to the variable's name.
	fromEnv map[string]string
	pos     map[string]int
}

func newProblems(pos map[string]int) *problems {
	return &problems{failed: map[string]bool{}, fromEnv: map[string]string{}, pos: pos}
}

func (p *problems) add(key string, err error) {
	if p.isFailed(key) {
		return // the value was not decoded: that is its one problem
	}
	p.list = append(p.list, &keyError{key: key, env: p.fromEnv[key], err: err})
}

func (p *problems) addf(key, format string, args ...any) {
	p.add(key, fmt.Errorf(format, args...))
}

// check records msg at key when bad.
func (p *problems) check(key string, bad bool, msg string) {
	if bad {
		p.add(key, errors.New(msg))
	}
}

// decodeFailed records a value that could not be decoded. It keeps its
// default, and no other problem is recorded for it or for a key below it.
func (p *problems) decodeFailed(key string, err error) {
	p.add(key, err)
	p.failed[key] = true
}

// isFailed reports whether key, or a key above it, could not be decoded.
func (p *problems) isFailed(key string) bool {
	for k := key; k != ""; k = parentKey(k) {
		if p.failed[k] {
			return true
		}
	}
	return false
}

// hasUnder reports whether a problem was recorded for key or a key below
// it.
func (p *problems) hasUnder(key string) bool {
	for _, e := range p.list {
		if e.key == key || strings.HasPrefix(e.key, key+".") || strings.HasPrefix(e.key, key+"[") {
			return true
		}
	}
	return false
}

// err returns all problems sorted by where their key appears in the file,
// joined one per line, or nil.
func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	sort.SliceStable(p.list, func(i, j int) bool {
		return p.position(p.list[i].key) < p.position(p.list[j].key)
	})
	errs := make([]error, len(p.list))
	for i, e := range p.list {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// position is where key, or the nearest key above it, appears in the file.
// Keys that are not in the file (defaults, environment) sort last.
func (p *problems) position(key string) int {
	for k := key; k != ""; k = parentKey(k) {
		if pos, ok := p.pos[k]; ok {
			return pos
		}
	}
	return math.MaxInt
}

// parentKey strips the last ".name" or "[i]" from key.
func parentKey(key string) string {
	i := strings.LastIndexAny(key, ".[")
	if i < 0 {
		return ""
	}
	return key[:i]
}

// foldKeys lower-cases the keys of every mapping in doc, as keys are not
// case-sensitive, and returns the keys written twice in different cases
// ("Addr" after "addr"), dropping the second: which one was meant is
// unknown. A key written twice as is is left for the decoder to refuse.
func foldKeys(doc *yaml.Node) (dups []string) {
	var fold func(n *yaml.Node, key string)
	fold = func(n *yaml.Node, key string) {
		switch n.Kind {
		case yaml.MappingNode:
			written := map[string]string{}
			kept := n.Content[:0]
			for i := 0; i+1 < len(n.Content); i += 2 {
				name, value := n.Content[i], n.Content[i+1]
				k := strings.ToLower(name.Value)
				if w, dup := written[k]; dup && w != name.Value {
					dups = append(dups, joinKey(key, k))
					continue
				}
				written[k] = name.Value
				name.Value = k
				fold(value, joinKey(key, k))
				kept = append(kept, name, value)
			}
			n.Content = kept
		case yaml.SequenceNode, yaml.DocumentNode:
			for i, c := range n.Content {
				if n.Kind == yaml.SequenceNode {
					fold(c, key+"["+strconv.Itoa(i)+"]")
				} else {
					fold(c, key)
				}
			}
		}
	}
	fold(doc, "")
	return dups
}

// positions maps every key path in a parsed document ("instances[0].addr")
// to its position (line and column) in the file.
func positions(doc *yaml.Node) map[string]int {
	pos := map[string]int{}
	walkKeys(doc, func(key string, name, value *yaml.Node) {
		at := value
		if name != nil {
			at = name
		}
		pos[key] = at.Line<<20 | at.Column
	})
	return pos
}

// walkKeys calls visit for every mapping value and list item of a parsed
// document, parents first, with its key path ("instances[0].addr"), the
// key's node (nil for a list item) and the value's node. Aliases are not
// followed.
func walkKeys(doc *yaml.Node, visit func(key string, name, value *yaml.Node)) {
	var walk func(n *yaml.Node, key string)
	walk = func(n *yaml.Node, key string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := joinKey(key, n.Content[i].Value)
				visit(k, n.Content[i], n.Content[i+1])
				walk(n.Content[i+1], k)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				k := key + "[" + strconv.Itoa(i) + "]"
				visit(k, nil, c)
				walk(c, k)
			}
		}
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		walk(doc.Content[0], "")
	}
}
