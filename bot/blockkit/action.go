package blockkit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/runbooks"
)

// ActionRunbook is the kind of the "Full runbook" button. Action ids are
// "<kind>/<finding-id>/<index>", unique within a message because the index
// is the finding's place in the report.
const ActionRunbook = "runbook"

// RunbookRef is what a "Full runbook" button carries, as JSON in its value:
// enough for the transport to re-probe the instance and render the runbook.
type RunbookRef struct {
	Instance string `json:"instance"`
	Finding  string `json:"finding"`
}

// maxActionIndex bounds the index part of an action id; no report has more
// findings than the catalogue has ids.
const maxActionIndex = 999

// instanceName is the pattern config enforces for instance names.
var instanceName = regexp.MustCompile(`^[a-z0-9._-]{1,64}$`)

// ParseAction checks a button click that came back from Slack. The action id
// and value are untrusted (anyone who can post to the interaction endpoint
// with a valid signature controls them), so it accepts only a known kind, a
// finding id from handlers.Catalogue that matches the value's, and an
// instance name config could hold. The instance must still be looked up in
// config before anything is probed.
func ParseAction(actionID, value string) (kind string, ref RunbookRef, err error) {
	if len(actionID) > maxActionID {
		return "", RunbookRef{}, fmt.Errorf("action id is %d bytes long; the limit is %d", len(actionID), maxActionID)
	}
	if len(value) > maxButtonValue {
		return "", RunbookRef{}, fmt.Errorf("action value is %d bytes long; the limit is %d", len(value), maxButtonValue)
	}
	parts := strings.Split(actionID, "/")
	if len(parts) != 3 {
		return "", RunbookRef{}, fmt.Errorf("action id %q is not <kind>/<finding>/<index>", actionID)
	}
	kind, finding, index := parts[0], parts[1], parts[2]
	if kind != ActionRunbook {
		return "", RunbookRef{}, fmt.Errorf("unknown action kind %q", kind)
	}
	if _, ok := handlers.SpecFor(finding); !ok {
		return "", RunbookRef{}, fmt.Errorf("unknown finding id %q", finding)
	}
	if n, err := strconv.Atoi(index); err != nil || n < 0 || n > maxActionIndex || strconv.Itoa(n) != index {
		return "", RunbookRef{}, fmt.Errorf("bad action index %q", index)
	}

	dec := json.NewDecoder(strings.NewReader(value))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ref); err != nil {
		return "", RunbookRef{}, fmt.Errorf("action value: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "", RunbookRef{}, errors.New("action value: data after the JSON object")
	}
	if ref.Finding != finding {
		return "", RunbookRef{}, fmt.Errorf("action value names finding %q, its id %q", ref.Finding, finding)
	}
	if !instanceName.MatchString(ref.Instance) {
		return "", RunbookRef{}, fmt.Errorf("action value: bad instance name %q", ref.Instance)
	}
	return kind, ref, nil
}

// runbookButton is the "Full runbook" button of the i-th finding. There is
// none when the click could not be served: no runbook for the finding, or a
// finding id or instance name that ParseAction would refuse.
func runbookButton(rep *handlers.Report, i int, f handlers.Finding, lib *runbooks.Library) (*slack.ButtonBlockElement, bool) {
	if lib == nil || i > maxActionIndex || !instanceName.MatchString(rep.Instance) {
		return nil, false
	}
	// A key finding's evidence is its scan, which a click cannot repeat:
	// its runbook goes in the thread with the report instead.
	if spec, ok := handlers.SpecFor(f.ID); !ok || spec.Area == handlers.AreaKeys {
		return nil, false
	}
	if _, ok := lib.Get(f.ID); !ok {
		return nil, false
	}
	value, err := json.Marshal(RunbookRef{Instance: rep.Instance, Finding: f.ID})
	if err != nil || len(value) > maxButtonValue {
		return nil, false
	}
	actionID := fmt.Sprintf("%s/%s/%d", ActionRunbook, f.ID, i)
	return slack.NewButtonBlockElement(actionID, string(value), plainText("Full runbook", maxButtonText)), true
}
