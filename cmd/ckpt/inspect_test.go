package main

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// writeSafetensors writes a small F32 file with formats.NewWriter: each tensor
// filled with 0.5, plus metadata.
func writeSafetensors(t *testing.T, path string, specs []formats.TensorSpec, metadata map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	w, err := formats.NewWriter(&buf, specs, metadata)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range w.Order() {
		n, _ := s.ByteLen()
		data := make([]byte, n)
		for i := 0; i+4 <= len(data); i += 4 {
			copy(data[i:], []byte{0, 0, 0, 0x3f}) // 0.5 as little-endian F32
		}
		if err := w.WriteTensor(s.Name, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// keysOf returns the keys of a decoded JSON object.
func keysOf(v any) map[string]bool {
	out := map[string]bool{}
	for k := range v.(map[string]any) {
		out[k] = true
	}
	return out
}

// requireKeys fails unless obj has every one of keys.
func requireKeys(t *testing.T, what string, obj any, keys ...string) {
	t.Helper()
	have := keysOf(obj)
	for _, k := range keys {
		if !have[k] {
			t.Errorf("%s: field %q missing (have %v)", what, k, have)
		}
	}
}

func TestInspectShardedCheckpoint(t *testing.T) {
	dir := cliTiny(t, 3, "")
	r := cliRun(t, "inspect", "--json", dir)
	r.wantCode(t, 0)
	reps := cliJSON(t, r.stdout)
	if len(reps) != 1 {
		t.Fatalf("%d JSON objects for one path, want 1", len(reps))
	}
	rep := reps[0]
	requireKeys(t, "report", rep, "path", "files", "tensors", "findings", "summary")
	if rep["path"] != dir || rep["layout"] != "sharded" {
		t.Errorf("path %v layout %v", rep["path"], rep["layout"])
	}
	files := rep["files"].([]any)
	if len(files) != 3 {
		t.Fatalf("%d files, want 3", len(files))
	}
	var fileBytes int64
	for _, f := range files {
		requireKeys(t, "file", f, "path", "bytes", "tensors")
		st, err := os.Stat(f.(map[string]any)["path"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if int64(f.(map[string]any)["bytes"].(float64)) != st.Size() {
			t.Errorf("file %v: bytes %v, size on disk %d", f.(map[string]any)["path"], f.(map[string]any)["bytes"], st.Size())
		}
		fileBytes += st.Size()
	}
	specs := synth.Tiny.Specs(formats.BF16)
	tensors := rep["tensors"].([]any)
	if len(tensors) != len(specs) {
		t.Fatalf("%d tensors, want %d", len(tensors), len(specs))
	}
	shapes := map[string][]uint64{}
	for _, s := range specs {
		shapes[s.Name] = s.Shape
	}
	for _, x := range tensors {
		requireKeys(t, "tensor", x, "name", "file", "dtype", "shape", "numel")
		tm := x.(map[string]any)
		want, ok := shapes[tm["name"].(string)]
		if !ok {
			t.Errorf("unexpected tensor %v", tm["name"])
			continue
		}
		numel := uint64(1)
		for i, d := range tm["shape"].([]any) {
			if uint64(d.(float64)) != want[i] {
				t.Errorf("%v: shape %v, want %v", tm["name"], tm["shape"], want)
			}
			numel *= want[i]
		}
		if tm["dtype"] != "BF16" || uint64(tm["numel"].(float64)) != numel || uint64(tm["bytes"].(float64)) != 2*numel {
			t.Errorf("%v: dtype %v numel %v bytes %v", tm["name"], tm["dtype"], tm["numel"], tm["bytes"])
		}
		if filepath.Base(tm["file"].(string)) != tm["shard"] {
			t.Errorf("%v: file %v but shard %v", tm["name"], tm["file"], tm["shard"])
		}
	}
	sum := rep["summary"].(map[string]any)
	requireKeys(t, "summary", sum, "tensors", "bytes", "errors", "warnings", "healthy")
	if uint64(sum["parameters"].(float64)) != synth.Tiny.Params() || int64(sum["bytes"].(float64)) != fileBytes ||
		sum["healthy"] != true || sum["errors"].(float64) != 0 {
		t.Errorf("summary %v; want %d parameters, %d bytes, healthy", sum, synth.Tiny.Params(), fileBytes)
	}
	if f := rep["findings"].([]any); len(f) != 0 {
		t.Errorf("findings %v, want none", f)
	}
	dts := rep["dtypes"].([]any)
	if len(dts) != 1 || uint64(dts[0].(map[string]any)["parameters"].(float64)) != synth.Tiny.Params() {
		t.Errorf("dtype totals %v", dts)
	}

	txt := cliRun(t, "inspect", dir)
	txt.wantCode(t, 0)
	for _, want := range []string{"sharded checkpoint", "model.layers.3.mlp.down_proj.weight", synth.ShardName(2, 3),
		groupDigits(synth.Tiny.Params()), "metadata of all 3 files:", "OK"} {
		if !strings.Contains(txt.stdout, want) {
			t.Errorf("text output lacks %q:\n%s", want, txt.stdout)
		}
	}
	sumOnly := cliRun(t, "inspect", "--summary", dir)
	if strings.Contains(sumOnly.stdout, "model.layers.3.mlp.down_proj.weight") || !strings.Contains(sumOnly.stdout, "BF16") {
		t.Errorf("--summary still lists tensors or lost the dtype totals:\n%s", sumOnly.stdout)
	}
}

func TestInspectTruncatedShard(t *testing.T) {
	dir := cliTiny(t, 2, "")
	shard := filepath.Join(dir, synth.ShardName(2, 2))
	if err := synth.Truncate(shard, 100); err != nil {
		t.Fatal(err)
	}
	r := cliRun(t, "inspect", "--json", dir)
	r.wantCode(t, 1)
	rep := cliJSON(t, r.stdout)[0]
	var hit map[string]any
	for _, f := range reportFindings(rep) {
		if f["severity"] == "error" && f["check"] == "format" && f["file"] == shard {
			hit = f
		}
	}
	if hit == nil || !strings.Contains(hit["message"].(string), "truncated") {
		t.Fatalf("no format error naming %s as truncated: %v", shard, rep["findings"])
	}
	// The healthy shard is still described, and the cut tensor is marked.
	cut, first := 0, 0
	for _, x := range rep["tensors"].([]any) {
		tm := x.(map[string]any)
		if tm["cut"] == true {
			cut++
		}
		if tm["shard"] == synth.ShardName(1, 2) {
			first++
		}
	}
	if cut == 0 || first == 0 {
		t.Errorf("cut tensors %d, tensors of the intact shard %d: want both > 0", cut, first)
	}
	txt := cliRun(t, "inspect", "--color=never", dir)
	txt.wantCode(t, 1)
	if !strings.Contains(txt.stdout, "MALFORMED") || !strings.Contains(txt.stdout, shard) {
		t.Errorf("text output does not name the truncated shard:\n%s", txt.stdout)
	}
}

func TestInspectPathErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	r := cliRun(t, "inspect", missing)
	r.wantCode(t, 2)
	if !errors.Is(r.err, fs.ErrNotExist) {
		t.Errorf("error %v is not fs.ErrNotExist", r.err)
	}
	if !strings.HasPrefix(r.stderr, "ckpt: error: "+missing+": ") || r.stdout != "" {
		t.Errorf("stderr %q stdout %q", r.stderr, r.stdout)
	}

	empty := t.TempDir()
	r = cliRun(t, "inspect", empty)
	r.wantCode(t, 2)
	if !errors.Is(r.err, formats.ErrNoWeights) || !strings.HasPrefix(r.stderr, "ckpt: error: "+empty+": ") {
		t.Errorf("err %v stderr %q", r.err, r.stderr)
	}

	// Several paths: each is inspected, the missing one is reported, exit 2.
	good := cliTiny(t, 0, "F32")
	r = cliRun(t, "inspect", "--json", good, missing)
	r.wantCode(t, 2)
	if reps := cliJSON(t, r.stdout); len(reps) != 1 || reps[0]["path"] != good {
		t.Errorf("stdout %q, want the report of %s", r.stdout, good)
	}
	if strings.Count(r.stderr, "ckpt: error: ") != 1 || !strings.Contains(r.stderr, missing) {
		t.Errorf("stderr %q", r.stderr)
	}
}

func TestInspectSeveralPaths(t *testing.T) {
	good := cliTiny(t, 0, "")
	bad := filepath.Join(t.TempDir(), "bad.safetensors")
	if err := os.WriteFile(bad, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := cliRun(t, "inspect", "--json", good, bad, good)
	r.wantCode(t, 1)
	reps := cliJSON(t, r.stdout)
	if len(reps) != 3 || reps[0]["path"] != good || reps[1]["path"] != bad || reps[2]["path"] != good {
		t.Fatalf("want three reports in argument order, got %d", len(reps))
	}
	if reps[0]["summary"].(map[string]any)["healthy"] != true || reps[1]["summary"].(map[string]any)["healthy"] != false {
		t.Errorf("summaries %v / %v", reps[0]["summary"], reps[1]["summary"])
	}
	txt := cliRun(t, "inspect", good, bad)
	txt.wantCode(t, 1)
	if strings.Count(txt.stdout, "OK: ") != 1 || strings.Count(txt.stdout, "MALFORMED: ") != 1 {
		t.Errorf("text of two paths:\n%s", txt.stdout)
	}
}

// hostileStrings are metadata and names that try to control a terminal.
var hostileStrings = []string{
	"\x1b]0;pwned\x07",   // set the window title
	"\x1b[2J\x1b[H",      // clear the screen
	"evil\u202egnp.exe",  // right-to-left override
	"csi\u009b31m",       // 8-bit CSI (C1 control)
	"line1\nline2\rover", // line breaks
	"del\x7f",            // DEL
}

// terminalUnsafe reports the first raw control sequence in s, if any.
func terminalUnsafe(s string) string {
	for _, bad := range []string{"\x1b", "\x07", "\u202e", "\u009b", "\x7f", "\r", "\xff", "line1\nline2"} {
		if strings.Contains(s, bad) {
			return bad
		}
	}
	return ""
}

func TestInspectHostileMetadataAndNames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hostile.safetensors")
	md := map[string]string{}
	var specs []formats.TensorSpec
	for i, s := range hostileStrings {
		md[s] = s
		specs = append(specs, formats.TensorSpec{Name: s, DType: formats.F32, Shape: []uint64{uint64(i + 1)}})
	}
	writeSafetensors(t, path, specs, md)

	for _, args := range [][]string{{"inspect", path}, {"scan", "--all", path}, {"scan", "--markdown", path}} {
		r := cliRun(t, args...)
		r.wantCode(t, 0)
		if bad := terminalUnsafe(r.stdout); bad != "" {
			t.Errorf("%v: raw %q reached stdout:\n%q", args, bad, r.stdout)
		}
	}
	r := cliRun(t, "inspect", path)
	for _, want := range []string{`\x1b]0;pwned\x07`, `\u202e`, `\u009b`, `\x7f`, `line1\nline2\rover`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("escaped form %q not shown:\n%s", want, r.stdout)
		}
	}

	// JSON: no raw control either, and decoding gives back the exact strings.
	for _, cmd := range []string{"inspect", "scan"} {
		j := cliRun(t, cmd, "--json", path)
		j.wantCode(t, 0)
		if bad := terminalUnsafe(strings.TrimSuffix(j.stdout, "\n")); bad != "" {
			t.Errorf("%s --json: raw %q in output", cmd, bad)
		}
		rep := cliJSON(t, j.stdout)[0]
		names := map[string]bool{}
		for _, x := range rep["tensors"].([]any) {
			names[x.(map[string]any)["name"].(string)] = true
		}
		for _, s := range specs {
			if !names[s.Name] {
				t.Errorf("%s --json: tensor %q not decoded back", cmd, s.Name)
			}
		}
		if cmd == "inspect" {
			got := rep["files"].([]any)[0].(map[string]any)["metadata"].(map[string]any)
			for _, s := range hostileStrings {
				if got[s] != s {
					t.Errorf("metadata %q decoded as %q", s, got[s])
				}
			}
		}
	}
}

func TestInspectUsage(t *testing.T) {
	r := cliRun(t, "inspect")
	r.wantCode(t, 2)
	if !strings.Contains(r.stderr, "ckpt: hint:") {
		t.Errorf("no hint: %q", r.stderr)
	}
	cliRun(t, "inspect", "--bogus", "x").wantCode(t, 2)
	cliRun(t, "inspect", "--color=sometimes", cliTiny(t, 0, "")).wantCode(t, 2)
	h := cliRun(t, "inspect", "--help")
	h.wantCode(t, 0)
	if !strings.Contains(h.stderr, "--json") || !strings.Contains(h.stderr, "--summary") {
		t.Errorf("help lacks flags: %q", h.stderr)
	}
}
