package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-tool/ckpt/internal/hostile"
)

// TestHostileCorpus feeds every malformed checkpoint of the hostile corpus to
// inspect and scan in each output format: each must end quickly, without a
// panic, with the exit status the case states, the finding check it states
// (exit 1) or a diagnostic on stderr naming the path (exit 2), and with JSON
// output that parses.
func TestHostileCorpus(t *testing.T) {
	for _, c := range hostileCorpus(t) {
		runs := []struct {
			want hostile.Expect
			args []string
		}{
			{c.Inspect, []string{"inspect", c.Path}}, {c.Inspect, []string{"inspect", "--json", c.Path}},
			{c.Scan, []string{"scan", c.Path}}, {c.Scan, []string{"scan", "--json", c.Path}}, {c.Scan, []string{"scan", "--markdown", "--source", "mmap", c.Path}},
		}
		if c.Name == "million-tensors" {
			// Its 60 MB header takes about a second to parse on a loaded machine: once is enough.
			runs = runs[1:2]
		}
		for _, run := range runs {
			r := cliRunBounded(t, 20*time.Second, fmt.Sprintf("%s %v", c.Name, run.args), run.args...)
			checkHostile(t, c, run.want, run.args, r)
			if run.want.Exit == 2 && !strings.HasPrefix(r.stderr, "ckpt: error: "+c.Path) {
				t.Errorf("%s %v: exit 2 without naming the path: %q", c.Name, run.args, r.stderr)
			}
		}
	}
}

// checkHostile holds one command's run on a case to what the case states: the
// exit status; for exit 1 an error finding (a culprit, for bisect) of the
// stated check; for exit 2 a diagnostic; JSON that parses.
func checkHostile(t *testing.T, c hostile.Case, want hostile.Expect, args []string, r cliResult) {
	t.Helper()
	if r.code != want.Exit {
		t.Errorf("%s %v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", c.Name, args, r.code, want.Exit, truncateText(r.stdout, 2000), r.stderr)
		return
	}
	isJSON := len(args) > 1 && args[1] == "--json"
	var doc map[string]any
	if isJSON && r.stdout != "" {
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Errorf("%s %v: JSON does not parse: %v", c.Name, args, err)
			return
		}
	}
	switch want.Exit {
	case 1:
		if !hasErrorCheck(doc, r.stdout, isJSON, want.Check) {
			t.Errorf("%s %v: exit 1 without an error finding of check %q:\n%s", c.Name, args, want.Check, truncateText(r.stdout, 2000))
		}
	case 2:
		if !strings.HasPrefix(r.stderr, "ckpt: error: ") {
			t.Errorf("%s %v: exit 2 without a diagnostic: %q", c.Name, args, r.stderr)
		}
	}
}

// hasErrorCheck reports whether an output holds an error finding (or a bisect
// culprit) of check.
func hasErrorCheck(doc map[string]any, text string, isJSON bool, check string) bool {
	if !isJSON {
		// Text and Markdown rows start with the severity, then the check.
		return regexp.MustCompile(`(?m)^\|? *error *\|? *` + regexp.QuoteMeta(check) + `\b`).MatchString(text)
	}
	for _, key := range []string{"findings", "culprits"} {
		list, _ := doc[key].([]any)
		for _, f := range list {
			m, _ := f.(map[string]any)
			if m["check"] == check && (key == "culprits" || m["severity"] == "error") {
				return true
			}
		}
	}
	return false
}
