package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-tool/ckpt/internal/hostile"
)

// campaignSeeds is the range of seeds TestMutationCampaign runs: 24 cases
// (-short) or 48 from seed 1, or CKPT_CAMPAIGN_SEEDS cases from
// CKPT_CAMPAIGN_START for a longer campaign (docs/safety-campaign.md).
func campaignSeeds(t *testing.T) (start, n uint64) {
	start, n = 1, 48
	if testing.Short() {
		n = 24
	}
	if v := os.Getenv("CKPT_CAMPAIGN_SEEDS"); v != "" {
		x, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CKPT_CAMPAIGN_SEEDS=%q: %v", v, err)
		}
		n = x
	}
	if v := os.Getenv("CKPT_CAMPAIGN_START"); v != "" {
		x, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CKPT_CAMPAIGN_START=%q: %v", v, err)
		}
		start = x
	}
	return start, n
}

// TestMutationCampaign runs every command on seeded mutants of a complete
// trainer checkpoint (hostile.Mutate) and requires of each run: an answer
// within its time limit, no panic, exit 0, 1 or 2, no raw control character on
// stdout or stderr, JSON that parses, and for repair: inputs unchanged, nothing
// left behind when it refuses, an output that scans healthy when it writes.
func TestMutationCampaign(t *testing.T) {
	root := t.TempDir()
	good := filepath.Join(root, "good", "checkpoint-50")
	if err := hostile.WriteCampaignBase(good); err != nil {
		t.Fatal(err)
	}
	outs := filepath.Join(root, "outs")
	if err := os.Mkdir(outs, 0o755); err != nil {
		t.Fatal(err)
	}
	start, n := campaignSeeds(t)
	limit := 20 * time.Second
	tally := map[string]*[3]int{} // command → runs by exit status
	for seed := start; seed < start+n; seed++ {
		c, err := hostile.Mutate(filepath.Join(root, "mutants"), seed)
		if err != nil {
			t.Fatal(err)
		}
		before, goodBefore := treeDigest(t, c.Path), treeDigest(t, good)
		out := filepath.Join(outs, fmt.Sprintf("seed-%d", seed))
		runs := [][]string{
			{"inspect", c.Path}, {"inspect", "--json", c.Path},
			{"scan", "--no-progress", c.Path}, {"scan", "--json", "--no-progress", c.Path},
			{"diff", "--no-progress", good, c.Path}, {"diff", "--json", "--no-progress", good, c.Path},
			{"bisect", "--no-progress", good, c.Path},
			{"repair", "--no-progress", c.Path, "--from", good, "-o", out},
		}
		for _, args := range runs {
			label := fmt.Sprintf("%s: %s", c.Name, strings.Join(args[:len(args)-1], " "))
			r := cliRunBounded(t, limit, label, args...)
			if r.code < 0 || r.code > 2 {
				t.Errorf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", label, r.code, r.stdout, r.stderr)
				continue
			}
			if tally[args[0]] == nil {
				tally[args[0]] = &[3]int{}
			}
			tally[args[0]][r.code]++
			if i := strings.IndexAny(r.stdout+r.stderr, "\x1b\x00\u202e"); i >= 0 {
				t.Errorf("%s: a raw control character reached the output:\n%q", label, r.stdout+r.stderr)
			}
			if args[1] == "--json" && r.code != 2 {
				for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
					var v map[string]any
					if err := json.Unmarshal([]byte(line), &v); err != nil {
						t.Errorf("%s: JSON does not parse: %v", label, err)
						break
					}
				}
			}
			if r.code == 2 && !strings.Contains(r.stderr, "ckpt: error: ") {
				t.Errorf("%s: exit 2 without a diagnostic: %q", label, r.stderr)
			}
			if args[0] != "repair" {
				continue
			}
			if r.code == 0 {
				if s := cliRunBounded(t, limit, label+" (rescan)", "scan", "--no-progress", out); s.code != 0 {
					t.Errorf("%s: repair exit 0 but its output does not scan healthy (exit %d):\n%s", label, s.code, s.stdout)
				}
				os.RemoveAll(out)
			}
			if left, _ := os.ReadDir(outs); len(left) > 0 {
				t.Errorf("%s: exit %d left %s behind", label, r.code, left[0].Name())
				for _, e := range left {
					os.RemoveAll(filepath.Join(outs, e.Name()))
				}
			}
		}
		if treeDigest(t, c.Path) != before || treeDigest(t, good) != goodBefore {
			t.Errorf("%s: an input changed", c.Name)
		}
		os.RemoveAll(filepath.Dir(c.Path))
	}
	for _, cmd := range []string{"inspect", "scan", "diff", "bisect", "repair"} {
		if e := tally[cmd]; e != nil {
			t.Logf("%-7s exit 0: %d, exit 1: %d, exit 2: %d", cmd, e[0], e[1], e[2])
		}
	}
}
