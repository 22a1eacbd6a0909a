package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-tool/ckpt/internal/synth"
)

// TestTrainWithWatch runs scripts/train-with-watch.sh (the README's recipe
// for monitoring a run) around a stand-in trainer that saves a generated run
// checkpoint by checkpoint (weights first, trainer_state.json last, keeping
// only the 2 newest as save_total_limit does) and would then train on for a
// minute: when a checkpoint goes bad the script stops the trainer and exits
// 1, and the last healthy checkpoint is kept, byte-identical; a healthy run
// ends with the trainer's own status. Both runs mostly wait (the trainer's
// pauses, the watcher's final wait): they run in parallel, with each other and
// with the package's other parallel tests (they share no state: each has its
// own directories and passes its environment to its own processes).
func TestTrainWithWatch(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("bash is needed")
	}
	script := filepath.Join(cliModuleRoot(t), "scripts", "train-with-watch.sh")
	bin := ckptBinary(t)
	trainer := func(t *testing.T, staging string, steps []int, after string) string {
		t.Helper()
		var b strings.Builder
		b.WriteString("set -e\nrun=$1\n")
		for i, s := range steps {
			name := fmt.Sprintf("checkpoint-%d", s)
			fmt.Fprintf(&b, "mkdir -p \"$run/%s\"\n", name)
			fmt.Fprintf(&b, "for f in %q/*; do [ \"${f##*/}\" = trainer_state.json ] || cp \"$f\" \"$run/%s/\"; done\n", filepath.Join(staging, name), name)
			fmt.Fprintf(&b, "cp %q \"$run/%s/\"\n", filepath.Join(staging, name, "trainer_state.json"), name)
			if i >= 2 {
				fmt.Fprintf(&b, "rm -rf \"$run/checkpoint-%d\"\n", steps[i-2])
			}
			b.WriteString("sleep 0.4\n")
		}
		b.WriteString(after + "\n")
		p := filepath.Join(t.TempDir(), "train.sh")
		if err := os.WriteFile(p, []byte(b.String()), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	runScript := func(t *testing.T, train string) (run, keep string, code int, stderr string, took time.Duration) {
		t.Helper()
		dir := t.TempDir()
		run, keep = filepath.Join(dir, "run"), filepath.Join(dir, "keep")
		cmd := exec.Command("bash", script, run, keep, "bash", train, run)
		cmd.Env = append(os.Environ(), "CKPT="+bin, "CKPT_POLL=100ms", "CKPT_FINAL_WAIT=3")
		var out strings.Builder
		cmd.Stderr = &out
		start := time.Now()
		err := cmd.Run()
		took = time.Since(start)
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return run, keep, code, out.String(), took
	}

	t.Run("diverging", func(t *testing.T) {
		t.Parallel()
		staging := filepath.Join(t.TempDir(), "staging")
		truth, err := synth.WriteRunTruth(staging, synth.RunOptions{Seed: 5, Checkpoints: 8, JumpStep: 350, NaNStep: 650})
		if err != nil {
			t.Fatal(err)
		}
		run, keep, code, stderr, took := runScript(t, trainer(t, staging, truth.Steps, "sleep 60"))
		if code != 1 || took > 45*time.Second {
			t.Fatalf("exit %d after %v, want 1 well before the trainer's minute:\n%s", code, took, stderr)
		}
		if !strings.Contains(stderr, "stopping training") {
			t.Errorf("stderr does not say training was stopped:\n%s", stderr)
		}
		events, err := os.ReadFile(run + ".watch.jsonl")
		if err != nil || !strings.Contains(string(events), fmt.Sprintf(`{"event":"unhealthy","step":%d`, truth.FirstUnhealthy)) {
			t.Errorf("no unhealthy event at step %d (%v):\n%s", truth.FirstUnhealthy, err, events)
		}
		var kept struct {
			Kept []struct {
				Step int    `json:"step"`
				Copy string `json:"copy"`
			} `json:"kept"`
		}
		data, err := os.ReadFile(filepath.Join(keep, "kept.json"))
		if err != nil || json.Unmarshal(data, &kept) != nil {
			t.Fatalf("kept.json: %v\n%s", err, data)
		}
		var copyDir string
		for _, k := range kept.Kept {
			if k.Step == truth.LastHealthy {
				copyDir = k.Copy
			}
		}
		if copyDir == "" {
			t.Fatalf("the last healthy checkpoint (step %d) is not kept: %s", truth.LastHealthy, data)
		}
		if !filepath.IsAbs(copyDir) {
			copyDir = filepath.Join(keep, copyDir)
		}
		want, err1 := os.ReadFile(filepath.Join(staging, fmt.Sprintf("checkpoint-%d", truth.LastHealthy), "model.safetensors"))
		got, err2 := os.ReadFile(filepath.Join(copyDir, "model.safetensors"))
		if err1 != nil || err2 != nil || string(got) != string(want) {
			t.Errorf("the kept copy %s is not byte-identical to the checkpoint saved (%v, %v)", copyDir, err1, err2)
		}
	})
	t.Run("healthy", func(t *testing.T) {
		t.Parallel()
		staging := filepath.Join(t.TempDir(), "staging")
		truth, err := synth.WriteRunTruth(staging, synth.RunOptions{Seed: 6, Checkpoints: 3, JumpStep: 150, NaNStep: -1})
		if err != nil {
			t.Fatal(err)
		}
		_, _, code, stderr, _ := runScript(t, trainer(t, staging, truth.Steps, "exit 3"))
		if code != 3 {
			t.Errorf("exit %d, want the trainer's 3:\n%s", code, stderr)
		}
	})
}
