package synth_test

import (
	"bytes"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/ckpt-tool/ckpt/internal/synth"
	"github.com/ckpt-tool/ckpt/internal/testenv"
)

// treeFiles lists the regular files under dir, relative to it, sorted.
func treeFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// The committed examples must be exactly what the generator makes today, so
// the README's quick start runs on what the generator documents.
func TestCommittedExamplesAreReproducible(t *testing.T) {
	root := testenv.ModuleRoot(t)
	fresh := t.TempDir()
	if err := synth.WriteExamples(fresh, false); err != nil {
		t.Fatal(err)
	}
	regen := "regenerate with\n  go run ./cmd/ckpt-synth example --force"
	var total int64
	for _, dir := range []string{synth.ExampleDir, synth.ExampleRunDir} {
		committed := filepath.Join(root, filepath.FromSlash(dir))
		generated := filepath.Join(fresh, filepath.Base(dir))
		if _, err := os.Stat(committed); err != nil {
			t.Fatalf("the example %s is missing (%v); %s", dir, err, regen)
		}
		have, want := treeFiles(t, committed), treeFiles(t, generated)
		if !slices.Equal(have, want) {
			t.Errorf("%s holds %v, the generator writes %v; %s", dir, have, want, regen)
		}
		for _, name := range want {
			got, err := os.ReadFile(filepath.Join(committed, filepath.FromSlash(name)))
			if err != nil || !bytes.Equal(got, readFile(t, filepath.Join(generated, filepath.FromSlash(name)))) {
				t.Errorf("%s/%s differs from what the generator writes (%v); %s", dir, name, err, regen)
			}
			total += int64(len(got))
		}
	}
	if total > 512<<10 {
		t.Errorf("the examples are %d bytes: keep them well under 1 MB", total)
	}
	c := openClean(t, filepath.Join(root, filepath.FromSlash(synth.ExampleDir)))
	if len(c.Tensors) != len(synth.Tiny.Specs(synth.Example.DType)) {
		t.Errorf("example has %d tensors", len(c.Tensors))
	}
}

// The example run tells the README's story: healthy, a jump, drift, then NaN
// confined to the named tensors from the first checkpoint after NaNStep on.
func TestExampleRunStory(t *testing.T) {
	truth, err := synth.ExampleRun.Truth()
	if err != nil {
		t.Fatal(err)
	}
	if truth.DriftFrom != 300 || truth.DriftTo != 400 || truth.LastHealthy != 600 || truth.FirstUnhealthy != 700 {
		t.Errorf("example run truth %+v", truth)
	}
	run := filepath.Join(testenv.ModuleRoot(t), filepath.FromSlash(synth.ExampleRunDir))
	for _, step := range truth.Steps {
		dir := filepath.Join(run, "checkpoint-"+strconv.Itoa(step))
		c := openClean(t, dir)
		if _, err := os.Stat(filepath.Join(dir, "trainer_state.json")); err != nil {
			t.Error(err)
		}
		for _, ten := range c.Tensors {
			nonFinite := 0
			for _, v := range values(t, c, ten.Name) {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					nonFinite++
				}
			}
			want := 0
			if step >= truth.FirstUnhealthy && slices.Contains(synth.ExampleRun.NaNTensors, ten.Name) {
				want = int(ten.Numel())
			}
			if nonFinite != want {
				t.Errorf("checkpoint-%d %s: %d non-finite values, want %d", step, ten.Name, nonFinite, want)
			}
		}
	}
}
