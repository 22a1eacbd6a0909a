package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/internal/synth"
)

// TestRepairFromAuto repairs the first NaN checkpoint of a generated run with
// --from auto: GOOD is the checkpoint bisect recommends, the output scans
// healthy, and the run directory is untouched.
func TestRepairFromAuto(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	o := synth.RunOptions{Seed: 9, Checkpoints: 8, JumpStep: 350, NaNStep: 650, Shards: 2}
	if _, err := synth.WriteRun(run, o); err != nil {
		t.Fatal(err)
	}
	truth, err := o.Truth()
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(run, fmt.Sprintf("checkpoint-%d", truth.FirstUnhealthy))
	before := dirListing(t, run)
	out := filepath.Join(t.TempDir(), "fixed")

	r := cliRun(t, "repair", bad, "--from", "auto", "-o", out, "--json")
	r.wantCode(t, 0)
	var doc struct {
		Written bool
		Auto    struct {
			Good   string
			Step   int
			Reason string
		}
		Plan struct {
			Good     string
			Replaced int
		}
		Verification struct{ Healthy bool }
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("--json output: %v\n%s", err, r.stdout)
	}
	if !doc.Written || !doc.Verification.Healthy || doc.Plan.Good != doc.Auto.Good || doc.Auto.Reason == "" {
		t.Errorf("report: %s", r.stdout)
	}
	if doc.Auto.Step > truth.LastHealthy || doc.Auto.Good != filepath.Join(run, fmt.Sprintf("checkpoint-%d", doc.Auto.Step)) {
		t.Errorf("--from auto chose %s (step %d); the last healthy checkpoint is step %d", doc.Auto.Good, doc.Auto.Step, truth.LastHealthy)
	}
	cliRun(t, "scan", out).wantCode(t, 0)
	if after := dirListing(t, run); after != before {
		t.Errorf("the run directory changed:\nbefore %s\nafter  %s", before, after)
	}

	// The text output names the choice.
	r = cliRun(t, "repair", bad, "--from", "auto", "-o", out+"-text")
	r.wantCode(t, 0)
	if !strings.Contains(r.stdout, "(chosen by bisect: ") {
		t.Errorf("text output does not say GOOD was chosen by bisect:\n%s", r.stdout)
	}

	// A checkpoint outside any run has no automatic GOOD.
	r = cliRun(t, "repair", out, "--from", "auto", "-o", out+"-2")
	r.wantCode(t, 2)
	if !strings.Contains(r.stderr, "ckpt: hint: give GOOD explicitly") {
		t.Errorf("stderr: %s", r.stderr)
	}
}

// dirListing describes every file under root: path, size and modification time.
func dirListing(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %d %d\n", path, info.Size(), info.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestRepairHelp documents the flags.
func TestRepairHelp(t *testing.T) {
	r := cliRun(t, "repair", "--help")
	r.wantCode(t, 0)
	for _, flag := range []string{"--from", "--out", "--strategy", "--elements", "--force", "--dry-run", "--json"} {
		if !strings.Contains(r.stderr, flag) {
			t.Errorf("--help does not list %s:\n%s", flag, r.stderr)
		}
	}
}
