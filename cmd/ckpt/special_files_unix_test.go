//go:build unix

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ckpt-tool/ckpt/internal/synth"
)

// TestSpecialFiles puts a FIFO (no writer: opening it for reading the usual
// way blocks forever) and a symlink to /dev/zero (endless bytes) in place of
// every side file and every shard of a checkpoint, and runs every command on
// it: each must answer within 2 s, without a panic, and a command that reads
// the file must say it is not a regular file (or refuse it earlier).
// A refused repair leaves nothing behind.
func TestSpecialFiles(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	o := synth.RunOptions{Seed: 3, Checkpoints: 3, JumpStep: 150, NaNStep: -1, Shards: 2}
	steps, err := synth.WriteRun(run, o)
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(run, fmt.Sprintf("checkpoint-%d", steps[0]))
	bad := filepath.Join(run, fmt.Sprintf("checkpoint-%d", steps[len(steps)-1]))
	targets := []string{"config.json", "model.safetensors.index.json", "trainer_state.json",
		synth.ShardName(1, 2), synth.ShardName(2, 2)}
	kinds := map[string]func(p string) error{
		"fifo":     func(p string) error { return syscall.Mkfifo(p, 0o644) },
		"dev-zero": func(p string) error { return os.Symlink("/dev/zero", p) },
	}
	out := t.TempDir()
	for _, target := range targets {
		for kind, make := range kinds {
			p := filepath.Join(bad, target)
			aside := p + ".aside"
			if err := os.Rename(p, aside); err != nil {
				t.Fatal(err)
			}
			if err := make(p); err != nil {
				t.Fatal(err)
			}
			o := filepath.Join(out, target+"-"+kind)
			runs := [][]string{
				{"inspect", bad}, {"inspect", "--json", bad},
				{"scan", "--no-progress", bad},
				{"diff", "--no-progress", good, bad},
				{"bisect", "--no-progress", run},
				{"repair", "--no-progress", bad, "--from", good, "-o", o},
			}
			for _, args := range runs {
				label := fmt.Sprintf("%s as %s: %v", target, kind, args)
				start := time.Now()
				r := cliRunBounded(t, 10*time.Second, label, args...)
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("%s: took %v, want under 2 s", label, d)
				}
				if r.code < 0 || r.code > 2 {
					t.Errorf("%s: exit %d\n%s%s", label, r.code, r.stdout, r.stderr)
				}
				all := r.stdout + r.stderr
				// trainer_state.json is read by bisect only; config.json's
				// findings are reported by the commands that check shapes.
				reads := true
				switch target {
				case "trainer_state.json":
					reads = args[0] == "bisect"
				case "config.json":
					reads = args[0] != "diff" && args[0] != "bisect"
				}
				said := strings.Contains(all, "not a regular file") ||
					// a shard symlinked out of the directory is refused before that
					strings.Contains(all, "outside the checkpoint directory") ||
					// bisect treats a trainer_state.json it cannot read as absent
					(target == "trainer_state.json" && strings.Contains(all, "no trainer_state.json"))
				if reads && !said {
					t.Errorf("%s: exit %d without saying the file is not a regular file:\n%s%s", label, r.code, r.stdout, r.stderr)
				}
				if args[0] == "repair" && r.code != 0 {
					if _, err := os.Lstat(o); err == nil {
						t.Errorf("%s: a refused repair left %s behind", label, o)
					}
				}
			}
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(aside, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	if left, _ := filepath.Glob(filepath.Join(out, ".*")); len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}
