package hostile

import "testing"

// TestEveryCaseStatesItsExpectations: each case says what every command must
// do with it, and an exit 1 names the check of its finding.
func TestEveryCaseStatesItsExpectations(t *testing.T) {
	cases, err := Generate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 100 {
		t.Errorf("%d cases, want at least 100", len(cases))
	}
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.Name] {
			t.Errorf("%s: duplicate name", c.Name)
		}
		seen[c.Name] = true
		for cmd, e := range map[string]Expect{"inspect": c.Inspect, "scan": c.Scan, "diff": c.Diff, "bisect": c.Bisect, "repair": c.Repair} {
			switch {
			case e.Exit < 0 || e.Exit > 2:
				t.Errorf("%s: %s exit %d", c.Name, cmd, e.Exit)
			case e.Exit == 1 && e.Check == "":
				t.Errorf("%s: %s exit 1 names no finding check", c.Name, cmd)
			case e.Exit != 1 && e.Check != "":
				t.Errorf("%s: %s exit %d with a finding check %q", c.Name, cmd, e.Exit, e.Check)
			}
		}
		if c.Inspect.Exit == 0 || c.Scan.Exit == 0 {
			t.Errorf("%s: a malformed checkpoint cannot inspect or scan healthy", c.Name)
		}
	}
}
