package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-tool/ckpt/internal/hostile"
)

// TestHostileCorpus feeds every malformed checkpoint of the hostile corpus to
// inspect and scan in each output format: each must end quickly, without a
// panic, with exit 1 (a finding naming the problem) or 2 (a diagnostic on
// stderr naming the path), and with JSON output that parses.
func TestHostileCorpus(t *testing.T) {
	cases, err := hostile.Generate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		runs := [][]string{
			{"inspect", c.Path}, {"inspect", "--json", c.Path},
			{"scan", c.Path}, {"scan", "--json", c.Path}, {"scan", "--markdown", "--source", "mmap", c.Path},
		}
		if c.Name == "million-tensors" {
			// Its 60 MB header takes about a second to parse on a loaded machine: once is enough.
			runs = runs[1:2]
		}
		for _, args := range runs {
			r := cliRunBounded(t, 20*time.Second, fmt.Sprintf("%s %v", c.Name, args), args...)
			switch r.code {
			case 1:
				if !strings.Contains(r.stdout, "format") && !strings.Contains(r.stdout, "nonfinite") && !strings.Contains(r.stdout, "pickle") {
					t.Errorf("%s %v: exit 1 without a format, nonfinite or pickle finding:\n%s", c.Name, args, r.stdout)
				}
				if strings.HasPrefix(c.Name, "torch-") && r.code != 1 {
					t.Errorf("%s %v: a hostile PyTorch file must be exit 1 (a finding), got %d", c.Name, args, r.code)
				}
				if args[1] == "--json" {
					var m map[string]any
					if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
						t.Errorf("%s %v: JSON does not parse: %v", c.Name, args, err)
					}
				}
			case 2:
				if !strings.HasPrefix(r.stderr, "ckpt: error: "+c.Path) {
					t.Errorf("%s %v: exit 2 without naming the path: %q", c.Name, args, r.stderr)
				}
			default:
				t.Errorf("%s %v: exit %d, want 1 or 2\nstdout:\n%s\nstderr:\n%s", c.Name, args, r.code, r.stdout, r.stderr)
			}
		}
	}
}
