package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// copyDir copies the regular files of a checkpoint directory.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	des, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		data, err := os.ReadFile(filepath.Join(src, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, de.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// diffDoc is the JSON of ckpt diff, as a user's program reads it.
type diffDoc struct {
	A, B    string
	Tensors []struct {
		Name              string
		Status            string
		RelL2             *float64 `json:"rel_l2"`
		MaxAbs            *float64 `json:"max_abs"`
		Cosine            *float64
		NonfiniteAppeared uint64 `json:"nonfinite_appeared"`
	}
	Summary struct {
		Tensors           int
		Identical         int
		Changed           int
		NonfiniteAppeared uint64 `json:"nonfinite_appeared"`
		Same              bool
	}
}

func decodeDiff(t *testing.T, stdout string) diffDoc {
	t.Helper()
	var d diffDoc
	if err := json.Unmarshal([]byte(stdout), &d); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	return d
}

func TestDiffExitStatuses(t *testing.T) {
	a := cliTiny(t, 0, "")
	same := filepath.Join(t.TempDir(), "same")
	copyDir(t, a, same)
	b := filepath.Join(t.TempDir(), "b")
	copyDir(t, a, b)
	if err := synth.ScaleTensor(filepath.Join(b, "model.safetensors"), "model.layers.2.mlp.down_proj.weight", 2); err != nil {
		t.Fatal(err)
	}

	r := cliRun(t, "diff", a, same)
	r.wantCode(t, 0)
	if !strings.Contains(r.stdout, "IDENTICAL: all 51 tensors are byte-identical") || r.stderr != "" {
		t.Errorf("identical:\n%s\nstderr: %s", r.stdout, r.stderr)
	}

	r = cliRun(t, "diff", a, b)
	r.wantCode(t, 1)
	lines := strings.Split(r.stdout, "\n")
	var row string
	for _, l := range lines {
		if strings.HasPrefix(l, "changed ") {
			row = l
			break
		}
	}
	// Doubling a tensor (exact in bf16) moves it by exactly its own norm: rel_l2 1, cosine 1.
	if f := strings.Fields(row); len(f) != 8 || f[1] != "model.layers.2.mlp.down_proj.weight" || f[5] != "1" || f[7] != "1.000000" {
		t.Errorf("first changed row %q\n%s", row, r.stdout)
	}
	if !strings.Contains(r.stdout, "DIFFERENT: 1 of 51 tensors differ (1 changed)") || !strings.Contains(r.stdout, "… and 50 identical tensors") {
		t.Errorf("different:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "BY LAYER") || !strings.Contains(r.stdout, "model.layers.2 ") {
		t.Errorf("no per-layer table:\n%s", r.stdout)
	}

	r = cliRun(t, "diff", "--json", a, b)
	r.wantCode(t, 1)
	doc := cliJSON(t, r.stdout)
	if len(doc) != 1 {
		t.Fatalf("%d JSON documents", len(doc))
	}
	requireKeys(t, "diff", doc[0], "a", "b", "tensors", "summary")
	requireKeys(t, "diff tensor", doc[0]["tensors"].([]any)[0], "name", "status", "rel_l2", "max_abs", "cosine")
	d := decodeDiff(t, r.stdout)
	if d.A != a || d.B != b || d.Summary.Tensors != 51 || d.Summary.Changed != 1 || d.Summary.Identical != 50 || d.Summary.Same {
		t.Errorf("summary %+v", d.Summary)
	}
	top := d.Tensors[0]
	if top.Name != "model.layers.2.mlp.down_proj.weight" || top.Status != "changed" || *top.RelL2 != 1 || math.Abs(*top.Cosine-1) > 1e-12 {
		t.Errorf("top tensor %+v", top)
	}
	for _, x := range d.Tensors[1:] {
		if x.Status != "identical" || *x.RelL2 != 0 || *x.MaxAbs != 0 || *x.Cosine != 1 {
			t.Errorf("%s: %+v", x.Name, x)
		}
	}

	// Trouble: a missing input, a wrong number of arguments, a truncated input.
	r = cliRun(t, "diff", a, filepath.Join(t.TempDir(), "missing"))
	r.wantCode(t, 2)
	if !strings.Contains(r.stderr, "ckpt: error: ") || !strings.Contains(r.stderr, "missing") {
		t.Errorf("stderr %s", r.stderr)
	}
	cliRun(t, "diff", a).wantCode(t, 2)
	cliRun(t, "diff", "--json", "--markdown", a, b).wantCode(t, 2)
	cut := filepath.Join(t.TempDir(), "cut")
	copyDir(t, a, cut)
	if err := synth.Truncate(filepath.Join(cut, "model.safetensors"), 100); err != nil {
		t.Fatal(err)
	}
	r = cliRun(t, "diff", a, cut)
	r.wantCode(t, 2)
	if !strings.Contains(r.stdout, "unreadable") || !strings.Contains(r.stderr, "could not be compared") {
		t.Errorf("truncated:\nstdout %s\nstderr %s", r.stdout, r.stderr)
	}
}

func TestDiffMarkdown(t *testing.T) {
	a := cliTiny(t, 2, "")
	b := filepath.Join(t.TempDir(), "b")
	copyDir(t, a, b)
	shard := filepath.Join(b, synth.ShardName(1, 2))
	c, err := formats.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	name := c.Files[0].Header.Tensors[0].Name
	if err := synth.SetValues(shard, name, map[int]float64{0: math.NaN(), 3: math.Inf(1)}); err != nil {
		t.Fatal(err)
	}
	r := cliRun(t, "diff", "--markdown", a, b)
	r.wantCode(t, 1)
	for _, want := range []string{"**ckpt diff**", "❌ **different, non-finite values appeared**", "| status | tensor |", "| changed | `" + name + "`", "+2/-0"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("missing %q:\n%s", want, r.stdout)
		}
	}
}

func TestDiffRealdataPairs(t *testing.T) {
	rd := cliRealdata(t)
	ml := filepath.Join(rd, "kako-jun__diffai/@adffa46380/to-migrate/deprecated/tests-old/fixtures/ml_models")
	r := cliRun(t, "diff", "--json", filepath.Join(ml, "normal_model.safetensors"), filepath.Join(ml, "anomalous_model.safetensors"))
	r.wantCode(t, 1)
	d := decodeDiff(t, r.stdout)
	for _, x := range d.Tensors {
		if strings.HasPrefix(x.Name, "fc1.") {
			if x.Status != "changed" || math.Abs(*x.RelL2-99) > 1 || *x.Cosine < 0.999 {
				t.Errorf("%s: %+v (fc1 is scaled about 100x)", x.Name, x)
			}
		} else if x.Status != "identical" {
			t.Errorf("%s: %s", x.Name, x.Status)
		}
	}
	for _, p := range [][2]string{{"checkpoint_epoch_0", "checkpoint_epoch_10"}, {"checkpoint_epoch_10", "checkpoint_epoch_50"}} {
		r := cliRun(t, "diff", filepath.Join(ml, p[0]+".safetensors"), filepath.Join(ml, p[1]+".safetensors"))
		r.wantCode(t, 1)
		if !strings.Contains(r.stdout, "6 of 6 tensors differ (6 changed)") {
			t.Errorf("%v:\n%s", p, r.stdout)
		}
	}
	tl := filepath.Join(rd, "JunSuzukiJapan__tl")
	r = cliRun(t, "diff", "--json", filepath.Join(tl, "@962514214a/model_2digit.safetensors"), filepath.Join(tl, "@b77a867ed0/model_2digit.safetensors"))
	r.wantCode(t, 1)
	d = decodeDiff(t, r.stdout)
	if d.Summary.NonfiniteAppeared != 59725 || d.Tensors[0].NonfiniteAppeared == 0 {
		t.Errorf("NaN appearing: summary %+v, first %+v", d.Summary, d.Tensors[0])
	}
}

// TestDiffReadsOnlyWhatItMust: `ckpt diff X X` knows that a file compared
// with itself is identical and reads only the headers (no tensor byte), and a
// copy of X is read once, byte by byte, without decoding a value. The work is
// counted, not timed (BenchmarkDiffIdenticalVsScan has the timings).
func TestDiffReadsOnlyWhatItMust(t *testing.T) {
	a, b := diffBenchPair(t, synth.Tiny)
	work := func(args ...string) (bytes, read, decoded int64) {
		t.Helper()
		r := cliRun(t, append([]string{"diff", "--json"}, args...)...)
		r.wantCode(t, 0)
		var doc struct {
			Summary struct {
				Bytes         int64 `json:"bytes"`
				BytesRead     int64 `json:"bytes_read"`
				ValuesDecoded int64 `json:"values_decoded"`
				Same          bool
			}
		}
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || !doc.Summary.Same {
			t.Fatalf("%v: %v, same %v", args, err, doc.Summary.Same)
		}
		return doc.Summary.Bytes, doc.Summary.BytesRead, doc.Summary.ValuesDecoded
	}
	if total, read, decoded := work(a, a); total == 0 || read != 0 || decoded != 0 {
		t.Errorf("diff X X: %d tensor bytes, read %d, decoded %d values; want nothing read", total, read, decoded)
	}
	if total, read, decoded := work(a, b); read != total || decoded != 0 {
		t.Errorf("diff X copy-of-X: %d tensor bytes, read %d, decoded %d values; want each side read once and nothing decoded", total, read, decoded)
	}
	// A changed tensor is decoded, and only then.
	if err := synth.ScaleTensor(b, "model.norm.weight", 2); err != nil {
		t.Fatal(err)
	}
	r := cliRun(t, "diff", "--json", a, b)
	r.wantCode(t, 1)
	if !strings.Contains(r.stdout, `"values_decoded":`) || strings.Contains(r.stdout, `"values_decoded":0`) {
		t.Errorf("a changed tensor decoded nothing:\n%s", r.stdout)
	}
}

// diffBenchPair writes a checkpoint of arch and a byte-identical copy.
func diffBenchPair(tb testing.TB, arch synth.Arch) (a, b string) {
	tb.Helper()
	a = filepath.Join(tb.TempDir(), "a")
	if err := synth.WriteCheckpoint(a, synth.Options{Arch: arch, Seed: 3}); err != nil {
		tb.Fatal(err)
	}
	b = filepath.Join(tb.TempDir(), "b")
	copyDir(tb, a, b)
	return a, b
}

// BenchmarkDiffIdenticalVsScan times `ckpt diff X X` (headers only), `ckpt
// diff X copy-of-X` (every byte read, nothing decoded) and `ckpt scan X`.
func BenchmarkDiffIdenticalVsScan(b *testing.B) {
	arch := synth.Arch{Name: "mid", VocabSize: 8192, Hidden: 512, Intermediate: 1408, Layers: 4, Heads: 8, KVHeads: 2}
	x, cp := diffBenchPair(b, arch)
	for _, c := range []struct {
		name string
		args []string
	}{{"diff-self", []string{"diff", "--json", x, x}}, {"diff-copy", []string{"diff", "--json", x, cp}}, {"scan", []string{"scan", "--json", x}}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if err := run(c.args, io.Discard, io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestDiffEscapesHostileNames(t *testing.T) {
	dir := t.TempDir()
	name := "evil\x1b[31m\u202e.weight"
	specs := []formats.TensorSpec{{Name: name, DType: formats.F32, Shape: []uint64{2}}}
	pa, pb := filepath.Join(dir, "a.safetensors"), filepath.Join(dir, "b.safetensors")
	writeSafetensors(t, pa, specs, nil)
	writeSafetensors(t, pb, specs, nil)
	if err := synth.SetValues(pb, name, map[int]float64{1: 3}); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"--color=never", "--markdown"} {
		r := cliRun(t, "diff", format, pa, pb)
		r.wantCode(t, 1)
		if terminalUnsafe(r.stdout) != "" {
			t.Errorf("%s: raw control characters in\n%q", format, r.stdout)
		}
	}
}

// TestDiffHostileCorpus compares a healthy checkpoint with every malformed one
// of the hostile corpus, both ways: each must end quickly, without a panic,
// with exit 1 (different) or 2 (the malformed input named on stderr), and with
// JSON that parses.
func TestDiffHostileCorpus(t *testing.T) {
	good := cliTiny(t, 0, "")
	for _, c := range hostileCorpus(t) {
		if c.Name == "million-tensors" {
			continue // parsing its header alone takes seconds; inspect's tests cover it
		}
		for _, args := range [][]string{{"diff", "--json", good, c.Path}, {"diff", c.Path, good}} {
			r := cliRunBounded(t, 20*time.Second, fmt.Sprintf("%s %v", c.Name, args), args...)
			checkHostile(t, c, c.Diff, args, r)
		}
	}
}
