package main

import (
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
	"github.com/ckpt-tool/ckpt/internal/synth"
	"github.com/ckpt-tool/ckpt/internal/testenv"
)

// scanParts runs `ckpt scan --part k/n --json` for every k and writes each
// part into dir; it returns the part files in order.
func scanParts(t *testing.T, dir, ckpt string, n int, extra ...string) []string {
	t.Helper()
	var files []string
	for k := range n {
		args := append([]string{"scan", "--json", "--no-progress", "--part", strconv.Itoa(k) + "/" + strconv.Itoa(n)}, extra...)
		r := cliRun(t, append(args, ckpt)...)
		r.wantCode(t, 0)
		f := filepath.Join(dir, "part-"+strconv.Itoa(k)+".json")
		if err := os.WriteFile(f, []byte(r.stdout), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

// timings matches the only part of a text report that depends on timing.
var timings = regexp.MustCompile(`scanned in [^\n]*`)

// mergeCases are checkpoints, healthy and damaged, for the merge tests.
func mergeCases(t *testing.T) map[string]string {
	t.Helper()
	cases := map[string]string{}
	cases["single file"] = cliTiny(t, 0, "")
	cases["sharded f32"] = cliTiny(t, 3, "F32")
	cases["one file"] = filepath.Join(cliTiny(t, 0, "F16"), "model.safetensors")

	bad := cliTiny(t, 2, "")
	if err := synth.SetValues(bad, "model.layers.1.mlp.up_proj.weight", map[int]float64{3: math.NaN(), 9: math.Inf(1)}); err != nil {
		t.Fatal(err)
	}
	if err := synth.ScaleTensor(bad, "model.layers.2.mlp.down_proj.weight", 1e4); err != nil {
		t.Fatal(err)
	}
	cases["nonfinite and outlier"] = bad

	trunc := cliTiny(t, 3, "")
	if err := synth.Truncate(filepath.Join(trunc, synth.ShardName(2, 3)), 1000); err != nil {
		t.Fatal(err)
	}
	cases["truncated shard"] = trunc

	lfs := cliTiny(t, 3, "")
	if err := synth.WriteLFSPointer(filepath.Join(lfs, synth.ShardName(1, 3))); err != nil {
		t.Fatal(err)
	}
	cases["lfs shard"] = lfs

	missing := cliTiny(t, 3, "")
	if _, err := synth.RemoveShard(missing, 3); err != nil {
		t.Fatal(err)
	}
	cases["missing shard"] = missing

	cut := cliTiny(t, 0, "F32")
	if err := synth.Truncate(filepath.Join(cut, "model.safetensors"), 4); err != nil {
		t.Fatal(err)
	}
	cases["cut tensors"] = cut
	return cases
}

// TestMergeEqualsScan: for N = 1, 2, 3, 7 parts, ckpt merge prints exactly what
// one ckpt scan prints, in JSON (byte for byte; scan JSON holds no timing),
// text (apart from the timing) and Markdown, with the same exit status.
func TestMergeEqualsScan(t *testing.T) {
	for name, ckpt := range mergeCases(t) {
		t.Run(name, func(t *testing.T) { checkMergeEqualsScan(t, ckpt, 1, 2, 3, 7) })
	}
}

// TestMergeTiedTensors: a PyTorch file whose lm_head is tied to the embedding
// (scanned once, by whichever part owns the embedding) merges into the scan.
func TestMergeTiedTensors(t *testing.T) {
	checkMergeEqualsScan(t, filepath.Join(testenv.RealdataTorch(t), "Herutriana44__TinyPeLLM"), 2, 3, 7)
}

// checkMergeEqualsScan: for each N, the merge of N parts prints what one scan
// prints, with the same exit status.
func checkMergeEqualsScan(t *testing.T, ckpt string, ns ...int) {
	t.Helper()
	whole := cliRun(t, "scan", "--json", "--no-progress", ckpt)
	text := cliRun(t, "scan", "--color=never", "--no-progress", "--all", ckpt)
	md := cliRun(t, "scan", "--markdown", "--no-progress", ckpt)
	if whole.code != 0 && whole.code != 1 {
		t.Fatalf("scan: exit %d\n%s", whole.code, whole.stderr)
	}
	for _, n := range ns {
		parts := scanParts(t, t.TempDir(), ckpt, n)
		got := cliRun(t, append([]string{"merge", "--json"}, parts...)...)
		got.wantCode(t, whole.code)
		if got.stdout != whole.stdout {
			t.Fatalf("N=%d: merged JSON differs from the scan:\nmerge: %s\nscan:  %s", n, got.stdout, whole.stdout)
		}
		gt := cliRun(t, append([]string{"merge", "--color=never", "--all"}, parts...)...)
		gt.wantCode(t, text.code)
		if a, b := timings.ReplaceAllString(gt.stdout, ""), timings.ReplaceAllString(text.stdout, ""); a != b {
			t.Fatalf("N=%d: merged text differs:\n%s\nscan:\n%s", n, a, b)
		}
		gm := cliRun(t, append([]string{"merge", "--markdown"}, parts...)...)
		gm.wantCode(t, md.code)
		if gm.stdout != md.stdout {
			t.Fatalf("N=%d: merged Markdown differs:\n%s\nscan:\n%s", n, gm.stdout, md.stdout)
		}
	}
}

// TestMergeThresholdsTravel: the outlier rules a part was run with are the ones
// merge applies.
func TestMergeThresholdsTravel(t *testing.T) {
	ckpt := mergeCases(t)["nonfinite and outlier"]
	flags := []string{"--outlier-warn-z", "2", "--outlier-warn-ratio", "1.1", "--target-dtype", "f16", "--huge-abs", "inf"}
	whole := cliRun(t, append(append([]string{"scan", "--json", "--no-progress"}, flags...), ckpt)...)
	parts := scanParts(t, t.TempDir(), ckpt, 3, flags...)
	got := cliRun(t, append([]string{"merge", "--json"}, parts...)...)
	got.wantCode(t, whole.code)
	if got.stdout != whole.stdout {
		t.Fatalf("merged JSON differs:\n%s\n%s", got.stdout, whole.stdout)
	}
}

// TestPartitionBalanced: the greedy rule gives every tensor one part, the same
// assignment every time, and no part more than total/N plus the largest tensor.
func TestPartitionBalanced(t *testing.T) {
	c, err := formats.Open(cliTiny(t, 3, "F32"))
	if err != nil {
		t.Fatal(err)
	}
	var total, largest int64
	for _, tn := range c.Tensors {
		total += inspect.PartWeight(tn)
		largest = max(largest, inspect.PartWeight(tn))
	}
	for _, n := range []int{1, 2, 3, 7, 100} {
		a, b := inspect.Partition(c, n), inspect.Partition(c, n)
		load := make([]int64, n)
		for i, k := range a {
			if k != b[i] || k < 0 || k >= n {
				t.Fatalf("N=%d: tensor %d in part %d then %d", n, i, k, b[i])
			}
			load[k] += inspect.PartWeight(c.Tensors[i])
		}
		for k, l := range load {
			if l > total/int64(n)+largest {
				t.Errorf("N=%d: part %d holds %d bytes of %d (largest tensor %d)", n, k, l, total, largest)
			}
		}
	}
}

// TestMergeRefuses: parts that do not make one scan are refused with a message
// saying why (exit 2).
func TestMergeRefuses(t *testing.T) {
	a := cliTiny(t, 2, "")
	b := cliTiny(t, 2, "")
	pa := scanParts(t, t.TempDir(), a, 3)
	pb := scanParts(t, t.TempDir(), b, 3)
	p2 := scanParts(t, t.TempDir(), a, 2)
	refuse := func(name, want string, args ...string) {
		t.Helper()
		r := cliRun(t, append([]string{"merge", "--json"}, args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, want) || r.stdout != "" {
			t.Errorf("%s: exit %d, stderr %q, stdout %q; want exit 2 mentioning %q", name, r.code, r.stderr, r.stdout, want)
		}
	}
	refuse("other checkpoint", "merge the parts of one checkpoint", pa[0], pa[1], pb[2])
	refuse("other N", "same N", pa[0], pa[1], p2[1])
	refuse("missing part", "missing part(s) 1/3: 2 of 3 parts given", pa[0], pa[2])
	refuse("duplicate part", "both part 1/3", pa[0], pa[1], pa[1], pa[2])
	junk := filepath.Join(t.TempDir(), "junk.json")
	os.WriteFile(junk, []byte(`{"kind":"something"}`), 0o644)
	refuse("not a part", "not a part file", pa[0], junk)
	cut := filepath.Join(t.TempDir(), "cut.json")
	raw, _ := os.ReadFile(pa[1])
	os.WriteFile(cut, raw[:len(raw)/2], 0o644)
	refuse("cut part", "cut short", pa[0], cut, pa[2])
	refuse("other flags", "different thresholds", append(pa[:2:2], scanParts(t, t.TempDir(), a, 3, "--min-spread", "0.5")[2])...)

	// A shard rewritten between parts, then after all of them.
	c := cliTiny(t, 2, "")
	dir := t.TempDir()
	first := scanParts(t, dir, c, 2)[0]
	shard := filepath.Join(c, synth.ShardName(1, 2))
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(shard, later, later); err != nil {
		t.Fatal(err)
	}
	second := scanParts(t, t.TempDir(), c, 2)[1]
	refuse("changed between parts", "changed between parts", first, second)
	both := scanParts(t, t.TempDir(), c, 2)
	if err := synth.ScaleTensor(c, "model.layers.1.mlp.up_proj.weight", 2); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(shard, later.Add(time.Hour), later.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	refuse("changed after the parts", "changed after the parts were scanned", both...)
}

// TestScanPartUsage: --part needs a valid K/N, --json and one PATH.
func TestScanPartUsage(t *testing.T) {
	c := cliTiny(t, 0, "")
	for _, args := range [][]string{
		{"scan", "--json", "--part", "4/4", c},
		{"scan", "--json", "--part", "x", c},
		{"scan", "--json", "--part", "0/0", c},
		{"scan", "--part", "0/2", c},
		{"scan", "--json", "--part", "0/2", c, c},
		{"merge"},
	} {
		r := cliRun(t, args...)
		if r.code != 2 || r.stdout != "" {
			t.Errorf("%v: exit %d, stdout %q; want a usage error", args, r.code, r.stdout)
		}
	}
}

// bisectParts runs `ckpt bisect --pairs-part k/n --json` for every k and
// writes each part into a fresh directory; it returns the part files.
func bisectParts(t *testing.T, n int, args ...string) []string {
	t.Helper()
	dir := t.TempDir()
	var files []string
	for k := range n {
		r := cliRun(t, append([]string{"bisect", "--json", "--no-progress", "--pairs-part", strconv.Itoa(k) + "/" + strconv.Itoa(n)}, args...)...)
		r.wantCode(t, 0)
		f := filepath.Join(dir, "pairs-"+strconv.Itoa(k)+".json")
		if err := os.WriteFile(f, []byte(r.stdout), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

// TestMergeBisectEqualsBisect: the drift timeline computed in N parts and
// merged gives the bisect report of one process (JSON byte for byte, text,
// exit status), for a run that diverges to NaN and one that only drifts.
func TestMergeBisectEqualsBisect(t *testing.T) {
	nan, _ := writeRun(t, synth.RunOptions{Seed: 11, Checkpoints: 9, JumpStep: 450, NaNStep: 750})
	drift, _ := writeRun(t, synth.RunOptions{Seed: 12, Checkpoints: 6, JumpStep: 350, NaNStep: -1})
	for name, run := range map[string]string{"nan": nan, "drift": drift} {
		t.Run(name, func(t *testing.T) {
			whole := cliRun(t, "bisect", "--json", "--no-progress", run)
			text := cliRun(t, "bisect", "--color=never", "--no-progress", run)
			for _, n := range []int{1, 2, 3, 7, 12} {
				parts := bisectParts(t, n, run)
				got := cliRun(t, append([]string{"merge", "--json"}, parts...)...)
				got.wantCode(t, whole.code)
				if got.stdout != whole.stdout {
					t.Fatalf("N=%d: merged bisect JSON differs:\nmerge: %s\nwhole: %s", n, got.stdout, whole.stdout)
				}
				gt := cliRun(t, append([]string{"merge", "--color=never"}, parts...)...)
				gt.wantCode(t, text.code)
				if gt.stdout != text.stdout {
					t.Fatalf("N=%d: merged bisect text differs:\n%s\nwhole:\n%s", n, gt.stdout, text.stdout)
				}
			}
		})
	}
}

// TestMergeBisectRefuses: bisect parts of different runs, cut differently,
// missing, mixed with scan parts, or of a run that changed, are refused.
func TestMergeBisectRefuses(t *testing.T) {
	a, _ := writeRun(t, synth.RunOptions{Seed: 12, Checkpoints: 5, JumpStep: 350, NaNStep: -1})
	b, _ := writeRun(t, synth.RunOptions{Seed: 13, Checkpoints: 5, JumpStep: 350, NaNStep: -1})
	pa := bisectParts(t, 2, a)
	pb := bisectParts(t, 2, b)
	p3 := bisectParts(t, 3, a)
	scan := scanParts(t, t.TempDir(), cliTiny(t, 0, ""), 1)
	refuse := func(name, want string, args ...string) {
		t.Helper()
		r := cliRun(t, append([]string{"merge", "--json"}, args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, want) || r.stdout != "" {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 mentioning %q", name, r.code, r.stderr, want)
		}
	}
	refuse("other run", "merge the parts of one run", pa[0], pb[1])
	refuse("other N", "same N", pa[0], p3[1])
	refuse("missing", "missing part(s) 1/2", pa[0])
	refuse("mixed kinds", "merge the parts of one job", pa[0], scan[0])
	refuse("other flags", "different --until", pa[0], bisectParts(t, 2, "--top", "3", a)[1])
	// A checkpoint rewritten after the parts ran.
	later := time.Now().Add(time.Hour)
	var shard string
	filepath.Walk(a, func(p string, info os.FileInfo, err error) error {
		if shard == "" && err == nil && strings.HasSuffix(p, ".safetensors") {
			shard = p
		}
		return nil
	})
	if err := os.Chtimes(shard, later, later); err != nil {
		t.Fatal(err)
	}
	refuse("changed after", "changed after the parts were computed", pa...)
	for _, args := range [][]string{
		{"bisect", "--pairs-part", "0/2", a},
		{"bisect", "--json", "--fast", "--pairs-part", "0/2", a},
		{"bisect", "--json", "--pairs-part", "2/2", a},
	} {
		if r := cliRun(t, args...); r.code != 2 || r.stdout != "" {
			t.Errorf("%v: exit %d; want a usage error", args, r.code)
		}
	}
}

// FuzzMergePart: whatever a part file holds, merge answers with a report or
// a clear error, never a panic or an attempt to allocate for a forged N.
func FuzzMergePart(f *testing.F) {
	ckpt := filepath.Join(f.TempDir(), "ckpt")
	if err := synth.WriteCheckpoint(ckpt, synth.Options{Arch: synth.Tiny, Seed: 1}); err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	var good []byte
	{
		var out, errb strings.Builder
		if err := run([]string{"scan", "--json", "--no-progress", "--part", "0/1", ckpt}, &out, &errb); err != nil {
			f.Fatal(err, errb.String())
		}
		good = []byte(out.String())
	}
	f.Add(good)
	f.Add([]byte(`{"kind":"ckpt-scan-part","version":1,"part":0,"parts":1000000000000}`))
	f.Add([]byte(`{"kind":"ckpt-bisect-part","version":1,"part":0,"parts":1,"args":[]}`))
	f.Add([]byte(`{"kind":"ckpt-scan-part","version":1,"part":0,"parts":1,"tensors":[{"index":-1}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "part.json")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r := cliRun(t, "merge", "--json", p)
		if r.code < 0 || r.code > 2 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
	})
}
