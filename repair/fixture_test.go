package repair

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"github.com/ckpt-tool/ckpt/internal/testenv"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// small is a Qwen2-shaped architecture big enough for two shards of several
// tensors each and small enough for fast tests.
var small = synth.Arch{Name: "repair-test", VocabSize: 64, Hidden: 16, Intermediate: 32, Layers: 3, Heads: 4, KVHeads: 2}

// makeCheckpoint writes a checkpoint directory as the HF Trainer leaves it:
// config.json, the weights (shards > 1: sharded with an index), tokenizer and
// generation files, and training state.
func makeCheckpoint(t testing.TB, dir string, arch synth.Arch, seed int64, shards int) {
	t.Helper()
	if err := synth.WriteCheckpoint(dir, synth.Options{Arch: arch, Seed: seed, Shards: shards}); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"generation_config.json":  `{"do_sample": true}`,
		"tokenizer.json":          `{"version": "1.0"}`,
		"tokenizer_config.json":   `{}`,
		"special_tokens_map.json": `{}`,
		"optimizer.pt":            "not really a pickle",
		"scheduler.pt":            "scheduler",
		"rng_state.pth":           "rng",
		"trainer_state.json":      `{"global_step": 1}`,
		"training_args.bin":       "args",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// damage sets elements of tensors to NaN (and one +Inf).
func damage(t testing.TB, dir string, tensors ...string) {
	t.Helper()
	c, err := formats.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range tensors {
		tn := c.Tensor(name)
		if tn == nil {
			t.Fatalf("no tensor %q in %s", name, dir)
		}
		vals := map[int]float64{0: math.NaN(), 3: math.NaN(), 5: math.Inf(1)}
		if i%2 == 1 {
			vals = map[int]float64{1: math.Inf(-1)}
		}
		if err := synth.SetValues(tn.File.Path, name, vals); err != nil {
			t.Fatal(err)
		}
	}
}

// pair writes GOOD (seed 1) and BAD (seed 2, the named tensors damaged) under
// a fresh directory and returns their paths and a path for OUT.
func pair(t testing.TB, shards int, damaged ...string) (bad, good, out string) {
	t.Helper()
	root := t.TempDir()
	good, bad, out = filepath.Join(root, "checkpoint-100"), filepath.Join(root, "checkpoint-200"), filepath.Join(root, "repaired")
	makeCheckpoint(t, good, small, 1, shards)
	makeCheckpoint(t, bad, small, 2, shards)
	damage(t, bad, damaged...)
	return bad, good, out
}

// tensorBytes reads every tensor of a checkpoint, by name.
func tensorBytes(t testing.TB, path string) map[string][]byte {
	t.Helper()
	c, err := formats.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, tn := range c.Tensors {
		b, err := synth.TensorBytes(tn)
		if err != nil {
			t.Fatal(err)
		}
		out[tn.Name] = b
	}
	return out
}

// treeSums maps every file under root (or root itself) to its SHA-256 and mode.
func treeSums(t testing.TB, roots ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, root := range roots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			if d.IsDir() {
				out[path] = "dir " + info.Mode().String()
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			out[path] = hex.EncodeToString(sum[:]) + " " + info.Mode().String() + " " + info.ModTime().String()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// assertUnchanged fails when any file differs from the sums taken before.
func assertUnchanged(t testing.TB, before map[string]string, roots ...string) {
	t.Helper()
	after := treeSums(t, roots...)
	var keys []string
	for k := range before {
		keys = append(keys, k)
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if before[k] != after[k] {
			t.Errorf("input changed: %s: before %q, after %q", k, before[k], after[k])
		}
	}
}

// scanHealthy scans a checkpoint and fails unless it is healthy.
func scanHealthy(t testing.TB, path string) *inspect.Result {
	t.Helper()
	r, err := inspect.ScanPath(context.Background(), path, inspect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Healthy() {
		t.Fatalf("%s does not scan healthy: %+v", path, r.Findings)
	}
	return r
}

// realdata is the shared corpus of real files (absent: a failure in CI, a skip elsewhere).
func realdata(t testing.TB) string { return testenv.Realdata(t) }

func sameBytes(a, b []byte) bool { return bytes.Equal(a, b) }
