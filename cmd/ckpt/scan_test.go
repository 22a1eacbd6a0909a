package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// scanTensors indexes the tensors of a decoded scan report by name.
func scanTensors(t *testing.T, rep map[string]any) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, x := range rep["tensors"].([]any) {
		tm := x.(map[string]any)
		out[tm["name"].(string)] = tm
	}
	return out
}

// contract field names of `ckpt scan --json` (DESIGN.md); never renamed.
var (
	contractReport  = []string{"path", "files", "tensors", "findings", "summary"}
	contractFile    = []string{"path", "bytes", "tensors"}
	contractTensor  = []string{"name", "file", "dtype", "shape", "numel", "nan", "posinf", "neginf", "zeros", "min", "max", "absmax", "mean", "std", "l2"}
	contractFinding = []string{"severity", "check", "tensor", "file", "message"}
	contractSummary = []string{"tensors", "bytes", "nonfinite_tensors", "errors", "warnings", "healthy"}
)

func requireScanContract(t *testing.T, rep map[string]any) {
	t.Helper()
	requireKeys(t, "report", rep, contractReport...)
	for _, f := range rep["files"].([]any) {
		requireKeys(t, "file", f, contractFile...)
	}
	for _, x := range rep["tensors"].([]any) {
		requireKeys(t, "tensor", x, contractTensor...)
	}
	for _, f := range rep["findings"].([]any) {
		requireKeys(t, "finding", f, contractFinding...)
	}
	requireKeys(t, "summary", rep["summary"], contractSummary...)
}

func TestScanHealthyMatchesReference(t *testing.T) {
	dir := cliTiny(t, 2, "")
	r := cliRun(t, "scan", "--json", dir)
	r.wantCode(t, 0)
	rep := cliJSON(t, r.stdout)[0]
	requireScanContract(t, rep)
	sum := rep["summary"].(map[string]any)
	if sum["healthy"] != true || sum["nonfinite_tensors"].(float64) != 0 || int(sum["tensors"].(float64)) != len(synth.Tiny.Specs(formats.BF16)) {
		t.Errorf("summary %v", sum)
	}
	// Each statistic lands in its field: compare with the plain reference
	// computed here from the bytes on disk.
	c, err := formats.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := scanTensors(t, rep)
	for _, name := range []string{"model.layers.0.mlp.up_proj.weight", "model.norm.weight", "model.layers.2.self_attn.k_proj.bias"} {
		ft := c.Tensor(name)
		data := make([]byte, ft.Length())
		f, err := os.Open(ft.File.Path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.ReadAt(data, ft.Offset)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		ref := inspect.ReferenceStats(ft.DType, data)
		j := got[name]
		for field, want := range map[string]float64{
			"min": ref.Min, "max": ref.Max, "absmax": ref.AbsMax, "mean": ref.Mean, "std": ref.Std(), "l2": ref.L2(),
			"zeros": float64(ref.Zeros), "numel": float64(ft.Numel()),
		} {
			// Extremes and counts exactly; the sums to the scan's promise
			// (docs/kernels.md): std and L2 within 1e-6 relative, the mean
			// within 1e-6 of itself or of the standard deviation.
			tol := 1e-9 * math.Max(1, math.Abs(want))
			switch field {
			case "std", "l2":
				tol = 1e-6 * math.Abs(want)
			case "mean":
				tol = 1e-6 * math.Max(math.Abs(want), ref.Std())
			}
			v, ok := j[field].(float64)
			if !ok || math.Abs(v-want) > tol {
				t.Errorf("%s.%s = %v, reference %v", name, field, j[field], want)
			}
		}
		if j["file"] != ft.File.Path || j["dtype"] != "BF16" || j["first_nonfinite_index"] != nil {
			t.Errorf("%s: file %v dtype %v first_nonfinite_index %v", name, j["file"], j["dtype"], j["first_nonfinite_index"])
		}
	}

	txt := cliRun(t, "scan", dir)
	txt.wantCode(t, 0)
	n := len(synth.Tiny.Specs(formats.BF16))
	if !strings.Contains(txt.stdout, "HEALTHY") || !strings.Contains(txt.stdout, plural(n, "tensor")+" are healthy") {
		t.Errorf("text of a healthy scan:\n%s", txt.stdout)
	}
	all := cliRun(t, "scan", "--all", dir)
	for _, s := range synth.Tiny.Specs(formats.BF16) {
		if !strings.Contains(all.stdout, s.Name) {
			t.Errorf("--all does not list %s", s.Name)
		}
	}
}

func TestScanInjectedNonFinite(t *testing.T) {
	dir := cliTiny(t, 0, "")
	file := filepath.Join(dir, "model.safetensors")
	worst, other := "model.layers.1.mlp.up_proj.weight", "model.layers.3.self_attn.q_proj.bias"
	if err := synth.SetValues(dir, worst, map[int]float64{70: math.NaN(), 71: math.Inf(1), 72: math.Inf(-1), 300: math.NaN()}); err != nil {
		t.Fatal(err)
	}
	// every element of a small tensor: no finite value is left
	allNaN := map[int]float64{}
	for i := 0; i < synth.Tiny.Hidden; i++ {
		allNaN[i] = math.NaN()
	}
	if err := synth.SetValues(dir, other, allNaN); err != nil {
		t.Fatal(err)
	}

	r := cliRun(t, "scan", "--json", dir)
	r.wantCode(t, 1)
	rep := cliJSON(t, r.stdout)[0]
	requireScanContract(t, rep)
	got := scanTensors(t, rep)
	w := got[worst]
	if w["nan"].(float64) != 2 || w["posinf"].(float64) != 1 || w["neginf"].(float64) != 1 || w["first_nonfinite_index"].(float64) != 70 {
		t.Errorf("%s: %v", worst, w)
	}
	if c := w["first_nonfinite_coords"].([]any); c[0].(float64) != float64(70/synth.Tiny.Hidden) || c[1].(float64) != float64(70%synth.Tiny.Hidden) {
		t.Errorf("coords %v of index 70 in [%d %d]", c, synth.Tiny.Intermediate, synth.Tiny.Hidden)
	}
	if w["absmax"] == nil || w["l2"] == nil {
		t.Errorf("statistics of the finite values of %s are null", worst)
	}
	o := got[other]
	for _, k := range []string{"min", "max", "absmax", "mean", "std", "l2"} {
		if o[k] != nil {
			t.Errorf("%s has no finite value but %s = %v, want null", other, k, o[k])
		}
	}
	if o["nan"].(float64) != float64(synth.Tiny.Hidden) {
		t.Errorf("%s: nan %v", other, o["nan"])
	}
	sum := rep["summary"].(map[string]any)
	if sum["nonfinite_tensors"].(float64) != 2 || sum["errors"].(float64) != 2 || sum["healthy"] != false {
		t.Errorf("summary %v", sum)
	}
	found := map[string]bool{}
	for _, f := range reportFindings(rep) {
		if f["check"] == "nonfinite" && f["severity"] == "error" && f["file"] == file {
			found[f["tensor"].(string)] = true
		}
	}
	if !found[worst] || !found[other] {
		t.Errorf("nonfinite findings %v", rep["findings"])
	}

	// Text: worst first (a whole tensor of NaN before 4 non-finite values),
	// the rest summarised.
	txt := cliRun(t, "scan", "--color=never", dir)
	txt.wantCode(t, 1)
	lines := strings.Split(txt.stdout, "\n")
	var rows []string
	for _, l := range lines {
		if strings.HasPrefix(l, "model.") {
			rows = append(rows, l)
		}
	}
	if len(rows) != 2 || !strings.HasPrefix(rows[0], other) || !strings.HasPrefix(rows[1], worst) {
		t.Errorf("table rows, want %s then %s:\n%s", other, worst, txt.stdout)
	}
	n := len(synth.Tiny.Specs(formats.BF16))
	for _, want := range []string{plural(n-2, "healthy tensor"), "UNHEALTHY", "2 of " + plural(n, "tensor"), groupDigits(uint64(synth.Tiny.Hidden)+2) + " NaN", "1 +Inf", "1 -Inf", worst} {
		if !strings.Contains(txt.stdout, want) {
			t.Errorf("text lacks %q:\n%s", want, txt.stdout)
		}
	}
}

func TestScanMalformedFilesAreFindings(t *testing.T) {
	cases := []struct {
		name    string
		damage  func(dir string) (file string, err error)
		mention string
	}{
		{"truncated", func(dir string) (string, error) {
			f := filepath.Join(dir, synth.ShardName(2, 3))
			return f, synth.Truncate(f, 1000)
		}, "truncated"},
		{"lfs", func(dir string) (string, error) {
			f := filepath.Join(dir, synth.ShardName(1, 3))
			return f, synth.WriteLFSPointer(f)
		}, "LFS"},
		{"missing shard", func(dir string) (string, error) {
			_, err := synth.RemoveShard(dir, 3)
			return filepath.Join(dir, synth.IndexName), err
		}, synth.ShardName(3, 3)},
		{"overlap", func(dir string) (string, error) {
			f := filepath.Join(dir, synth.ShardName(2, 3))
			_, err := synth.OverlapOffsets(f)
			return f, err
		}, "overlap"},
		{"escaping index", func(dir string) (string, error) {
			_, err := synth.EscapeIndex(dir)
			return filepath.Join(dir, synth.IndexName), err
		}, ".."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := cliTiny(t, 3, "")
			file, err := c.damage(dir)
			if err != nil {
				t.Fatal(err)
			}
			r := cliRun(t, "scan", "--json", dir)
			r.wantCode(t, 1)
			rep := cliJSON(t, r.stdout)[0]
			requireScanContract(t, rep)
			ok := false
			for _, f := range reportFindings(rep) {
				if f["severity"] == "error" && f["check"] == "format" && f["file"] == file && strings.Contains(f["message"].(string), c.mention) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("no format error on %s mentioning %q: %v", file, c.mention, rep["findings"])
			}
			// The intact shards are still scanned.
			scanned := 0
			for _, x := range rep["tensors"].([]any) {
				if x.(map[string]any)["scanned"] == true {
					scanned++
				}
			}
			if scanned == 0 {
				t.Error("no tensor of the intact shards was scanned")
			}
			txt := cliRun(t, "scan", "--color=never", dir)
			txt.wantCode(t, 1)
			if !strings.Contains(txt.stdout, "UNHEALTHY") || !strings.Contains(txt.stdout, filepath.Base(file)) {
				t.Errorf("text does not name %s:\n%s", file, txt.stdout)
			}
		})
	}
}

func TestScanTruncatedTensorsNotScanned(t *testing.T) {
	dir := cliTiny(t, 0, "F32")
	file := filepath.Join(dir, "model.safetensors")
	if err := synth.Truncate(file, 4); err != nil {
		t.Fatal(err)
	}
	r := cliRun(t, "scan", "--json", dir)
	r.wantCode(t, 1)
	skipped := 0
	for _, x := range cliJSON(t, r.stdout)[0]["tensors"].([]any) {
		tm := x.(map[string]any)
		if tm["scanned"] == false {
			skipped++
			if tm["skipped"] == "" || tm["l2"] != nil {
				t.Errorf("skipped tensor %v", tm)
			}
		}
	}
	if skipped != 1 {
		t.Errorf("%d tensors not scanned, want the 1 cut short", skipped)
	}
	txt := cliRun(t, "scan", "--color=never", dir)
	if !strings.Contains(txt.stdout, "not scanned") {
		t.Errorf("the cut tensor is not shown as not scanned:\n%s", txt.stdout)
	}
}

func TestScanColor(t *testing.T) {
	dir := cliTiny(t, 0, "")
	if err := synth.SetValues(dir, "model.norm.weight", map[int]float64{0: math.NaN()}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NO_COLOR", "")
	if r := cliRun(t, "scan", dir); strings.Contains(r.stdout, "\x1b[") {
		t.Errorf("colour on a non-terminal (auto):\n%q", r.stdout)
	}
	forced := cliRun(t, "scan", "--color=always", dir)
	forced.wantCode(t, 1)
	if !strings.Contains(forced.stdout, "\x1b[") {
		t.Errorf("--color=always without NO_COLOR gave no colour:\n%q", forced.stdout)
	}
	t.Setenv("NO_COLOR", "1")
	for _, cmd := range []string{"scan", "inspect"} {
		r := cliRun(t, cmd, "--color=always", dir)
		if strings.Contains(r.stdout, "\x1b") || strings.Contains(r.stderr, "\x1b") {
			t.Errorf("%s: colour despite NO_COLOR:\n%q", cmd, r.stdout)
		}
	}
	// Colour codes change nothing but colour: stripping them gives the plain text.
	t.Setenv("NO_COLOR", "")
	plain := cliRun(t, "scan", "--color=never", dir)
	colored := cliRun(t, "scan", "--color=always", dir)
	if stripANSI(colored.stdout) != maskElapsed(plain.stdout) && maskElapsed(stripANSI(colored.stdout)) != maskElapsed(plain.stdout) {
		t.Errorf("coloured text differs from plain text beyond colour:\n%s\n---\n%s", stripANSI(colored.stdout), plain.stdout)
	}
}

// stripANSI removes SGR sequences.
func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) && s[j] != 'm' {
				j++
			}
			i = j
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// maskElapsed blanks the "scanned in ..." duration, which differs between runs.
func maskElapsed(s string) string {
	i := strings.Index(s, "scanned in ")
	if i < 0 {
		return s
	}
	j := strings.IndexByte(s[i:], '\n')
	return s[:i] + "scanned in X" + s[i+j:]
}

func TestScanMarkdown(t *testing.T) {
	dir := cliTiny(t, 2, "")
	name := "model.layers.0.mlp.gate_proj.weight"
	if err := synth.SetValues(dir, name, map[int]float64{5: math.Inf(1)}); err != nil {
		t.Fatal(err)
	}
	r := cliRun(t, "scan", "--markdown", dir)
	r.wantCode(t, 1)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if !strings.Contains(lines[0], "unhealthy") || !strings.Contains(lines[0], dir) {
		t.Errorf("verdict line %q", lines[0])
	}
	var findingRows, fileRows int
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "| error | nonfinite | `"+name+"`"):
			findingRows++
		case strings.HasPrefix(l, "| `model-0000"):
			fileRows++
		}
	}
	if findingRows != 1 || fileRows != 2 {
		t.Errorf("%d finding rows (want 1), %d file rows (want 2):\n%s", findingRows, fileRows, r.stdout)
	}
	healthy := cliRun(t, "scan", "--markdown", cliTiny(t, 0, ""))
	healthy.wantCode(t, 0)
	if !strings.Contains(healthy.stdout, "healthy") || strings.Contains(healthy.stdout, "| severity |") {
		t.Errorf("markdown of a healthy scan:\n%s", healthy.stdout)
	}
}

func TestMarkdownEscaping(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	name := "a|b`c<img src=x>[link](http://x)"
	writeSafetensors(t, path, []formats.TensorSpec{{Name: name, DType: formats.F32, Shape: []uint64{2}}}, nil)
	if err := synth.SetValues(path, name, map[int]float64{1: math.NaN()}); err != nil {
		t.Fatal(err)
	}
	r := cliRun(t, "scan", "--markdown", path)
	r.wantCode(t, 1)
	for _, l := range strings.Split(r.stdout, "\n") {
		if !strings.HasPrefix(l, "| error |") {
			continue
		}
		// Cells are split by unescaped pipes only: 5 cells make 6 pipes.
		if n := strings.Count(l, "|") - strings.Count(l, `\|`); n != 6 {
			t.Errorf("row has %d unescaped pipes, want 6: %s", n, l)
		}
		// The name is a code span (literal text, fenced by `` as it holds a
		// backtick); outside it nothing may become HTML or a link.
		code := "``" + `a\|b` + "`" + `c<img src=x>[link](http://x)` + "``"
		if !strings.Contains(l, code) {
			t.Errorf("tensor name not rendered as the code span %s: %s", code, l)
		}
		if rest := strings.Replace(l, code, "", 1); strings.ContainsAny(rest, "<>") || strings.Contains(rest, "](") {
			t.Errorf("markup outside the code span: %s", rest)
		}
		return
	}
	t.Errorf("no finding row:\n%s", r.stdout)
}

func TestScanFlags(t *testing.T) {
	dir := cliTiny(t, 3, "")
	if err := synth.SetValues(dir, "model.embed_tokens.weight", map[int]float64{1000: math.NaN()}); err != nil {
		t.Fatal(err)
	}
	base := cliRun(t, "scan", "--json", dir)
	base.wantCode(t, 1)
	for _, args := range [][]string{{"-j", "1"}, {"-j", "3"}, {"--workers=2", "--source", "mmap"}, {"--source=pread"}} {
		r := cliRun(t, append(append([]string{"scan", "--json"}, args...), dir)...)
		r.wantCode(t, 1)
		if r.stdout != base.stdout {
			t.Errorf("scan %v differs from the default scan", args)
		}
	}
	for _, bad := range [][]string{{"-j", "-1"}, {"--source", "tape"}, {"--json", "--markdown"}, {"--color", "rainbow"}, {"--nope"}} {
		r := cliRun(t, append(append([]string{"scan"}, bad...), dir)...)
		r.wantCode(t, 2)
		if !strings.HasPrefix(r.stderr, "ckpt: error: ") {
			t.Errorf("%v: stderr %q", bad, r.stderr)
		}
	}
	cliRun(t, "scan").wantCode(t, 2)
	cliRun(t, "scan", "--help").wantCode(t, 0)
}

func TestScanSeveralPaths(t *testing.T) {
	good, bad := cliTiny(t, 0, ""), cliTiny(t, 0, "")
	if err := synth.SetValues(bad, "model.norm.weight", map[int]float64{3: math.NaN()}); err != nil {
		t.Fatal(err)
	}
	r := cliRun(t, "scan", "--json", good, bad)
	r.wantCode(t, 1)
	reps := cliJSON(t, r.stdout)
	if len(reps) != 2 || reps[0]["path"] != good || reps[1]["path"] != bad {
		t.Fatalf("want two reports in order, got %d", len(reps))
	}
	missing := filepath.Join(t.TempDir(), "gone")
	r = cliRun(t, "scan", good, missing, bad)
	r.wantCode(t, 2)
	if !strings.Contains(r.stderr, "ckpt: error: "+missing+": ") || strings.Count(r.stdout, "HEALTHY") != 2 {
		t.Errorf("stderr %q\nstdout:\n%s", r.stderr, r.stdout)
	}
	if r.stderr == "" || strings.Contains(r.stderr, "%") {
		t.Errorf("stderr %q", r.stderr)
	}
}

func TestScanStrict(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.safetensors")
	writeSafetensors(t, empty, nil, nil) // valid, no tensors: a warning
	cliRun(t, "scan", empty).wantCode(t, 0)
	cliRun(t, "scan", "--strict", empty).wantCode(t, 1)
}

func TestProgressHiddenWhenNotTerminal(t *testing.T) {
	var buf strings.Builder
	p := newByteProgress(&buf, 1000, "scan x", true)
	p.Add(500)
	p.Done()
	if p.Visible() || buf.Len() != 0 {
		t.Errorf("progress drawn on a non-terminal: %q", buf.String())
	}
	var nilBar *byteProgress
	nilBar.Add(1) // a nil bar is a no-op
	nilBar.Done()
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if newByteProgress(f, 1000, "x", true).Visible() {
		t.Error("progress visible on a regular file")
	}
}

// findingOn returns the findings of a scan report on one tensor.
func findingsOn(rep map[string]any, tensor string) []map[string]any {
	var out []map[string]any
	for _, f := range reportFindings(rep) {
		if f["tensor"] == tensor {
			out = append(out, f)
		}
	}
	return out
}

func TestScanOutlierFlags(t *testing.T) {
	// One layer's down_proj scaled 10x: an outlier among the same tensor of the
	// other layers (a warning by default: 10x is below the 64x error ratio).
	dir := cliTiny(t, 0, "F32")
	name := "model.layers.2.mlp.down_proj.weight"
	if err := synth.ScaleTensor(dir, name, 10); err != nil {
		t.Fatal(err)
	}
	r := cliRun(t, "scan", "--json", dir)
	r.wantCode(t, 0)
	fs := findingsOn(cliJSON(t, r.stdout)[0], name)
	if len(fs) != 1 || fs[0]["check"] != "outlier" || fs[0]["severity"] != "warning" {
		t.Fatalf("findings on %s: %v, want one outlier warning", name, fs)
	}
	txt := cliRun(t, "scan", "--color=never", dir)
	if !strings.Contains(txt.stdout, "HEALTHY") || !strings.Contains(txt.stdout, "1 warning") || !strings.Contains(txt.stdout, name) {
		t.Errorf("text of a scan with one warning:\n%s", txt.stdout)
	}
	cliRun(t, "scan", "--strict", dir).wantCode(t, 1)

	// The flags reach the rules: a lower error ratio makes it an error; a
	// higher warning ratio silences it.
	r = cliRun(t, "scan", "--json", "--outlier-error-ratio", "8", dir)
	r.wantCode(t, 1)
	if fs := findingsOn(cliJSON(t, r.stdout)[0], name); len(fs) != 1 || fs[0]["severity"] != "error" {
		t.Errorf("with --outlier-error-ratio 8: %v", fs)
	}
	r = cliRun(t, "scan", "--json", "--outlier-warn-ratio", "20", dir)
	r.wantCode(t, 0)
	if fs := findingsOn(cliJSON(t, r.stdout)[0], name); len(fs) != 0 {
		t.Errorf("with --outlier-warn-ratio 20: %v", fs)
	}
	r = cliRun(t, "scan", "--json", "--role-min-members", "5", dir) // tiny has 4 layers
	if fs := findingsOn(cliJSON(t, r.stdout)[0], name); len(fs) != 0 {
		t.Errorf("with --role-min-members 5: %v", fs)
	}
	for _, bad := range [][]string{{"--huge-abs", "0"}, {"--outlier-warn-z", "-1"}, {"--min-spread", "nan"}, {"--role-min-elements", "0"}, {"--target-dtype", "f17"}} {
		cliRun(t, append(append([]string{"scan"}, bad...), dir)...).wantCode(t, 2)
	}
}

func TestScanHugeAndTargetDType(t *testing.T) {
	dir := cliTiny(t, 0, "")
	flipped, big := "model.layers.1.self_attn.o_proj.weight", "model.embed_tokens.weight"
	if err := synth.FlipExponentBit(dir, flipped, 3); err != nil {
		t.Fatal(err)
	}
	if err := synth.SetValues(dir, big, map[int]float64{9: 1e6}); err != nil {
		t.Fatal(err)
	}
	sev := func(rep map[string]any, tensor string) string {
		for _, f := range findingsOn(rep, tensor) {
			if f["check"] == "outlier" {
				return f["severity"].(string)
			}
		}
		return ""
	}
	r := cliRun(t, "scan", "--json", dir)
	r.wantCode(t, 1)
	rep := cliJSON(t, r.stdout)[0]
	if sev(rep, flipped) != "error" || sev(rep, big) != "warning" {
		t.Errorf("flipped exponent: %q (want error); 1e6 in BF16: %q (want warning)", sev(rep, flipped), sev(rep, big))
	}
	r = cliRun(t, "scan", "--json", "--target-dtype", "f16", dir)
	r.wantCode(t, 1)
	if s := sev(cliJSON(t, r.stdout)[0], big); s != "error" {
		t.Errorf("1e6 with --target-dtype f16: %q, want error", s)
	}
	// --huge-abs inf (and --outlier-error-ratio inf, or the comparison with
	// the same tensor of the other layers still calls it an error) switch
	// those rules off: the flipped value is then only warned about, among
	// others as beyond the fp16 range.
	r = cliRun(t, "scan", "--json", "--huge-abs", "inf", "--outlier-error-ratio", "inf", dir)
	fp16 := false
	for _, f := range findingsOn(cliJSON(t, r.stdout)[0], flipped) {
		if f["severity"] != "warning" {
			t.Errorf("with the error rules off: %v", f)
		}
		fp16 = fp16 || strings.Contains(f["message"].(string), "65504")
	}
	if !fp16 {
		t.Errorf("no fp16 warning on %s with --huge-abs inf:\n%s", flipped, r.stdout)
	}
}
