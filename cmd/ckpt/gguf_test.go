package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/diff"
	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/formats/ggml"
	"github.com/ckpt-tool/ckpt/internal/synth"
	"github.com/ckpt-tool/ckpt/internal/testenv"
)

// TestRealdataGGUFCommands: every valid real GGUF file inspects and scans
// healthy (exit 0); every malformed or non-GGUF one gets a format error
// (exit 1) from both.
func TestRealdataGGUFCommands(t *testing.T) {
	dir := testenv.RealdataGGUF(t)
	raw, err := os.ReadFile(filepath.Join(dir, "truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var truth map[string]struct {
		Format string `json:"format"`
	}
	if err := json.Unmarshal(raw, &truth); err != nil {
		t.Fatal(err)
	}
	for rel, tr := range truth {
		if tr.Format == "hex-text" {
			continue
		}
		path := filepath.Join(dir, filepath.FromSlash(rel))
		t.Run(rel, func(t *testing.T) {
			for _, cmd := range []string{"inspect", "scan"} {
				r := cliRun(t, cmd, "--json", path)
				rep := cliJSON(t, r.stdout)[0]
				if tr.Format == "gguf" {
					r.wantCode(t, 0)
					continue
				}
				r.wantCode(t, 1)
				found := false
				for _, f := range reportFindings(rep) {
					found = found || (f["check"] == "format" && f["severity"] == "error")
				}
				if !found {
					t.Errorf("%s: no format error: %s", cmd, r.stdout)
				}
			}
		})
	}
}

// TestRealdataTruncatedGGUF: the 6-byte GGUF of the safetensors corpus is a
// GGUF finding now, not "not safetensors".
func TestRealdataTruncatedGGUF(t *testing.T) {
	dir := cliRealdata(t)
	path := filepath.Join(dir, "ollama__ollama", "@2d2b212e3d", "api", "test.gguf")
	for _, cmd := range []string{"inspect", "scan"} {
		r := cliRun(t, cmd, path)
		r.wantCode(t, 1)
		if !strings.Contains(r.stdout, "the file ends inside the GGUF header") || strings.Contains(r.stdout, "not safetensors") {
			t.Errorf("%s:\n%s", cmd, r.stdout)
		}
	}
}

// quantGGUF writes a GGUF with a Q4_K tensor (a NaN scale in block 1 when
// nan), an F16 tensor and an F32 norm holding big.
func quantGGUF(t *testing.T, dir, name string, nan bool, big float32) string {
	t.Helper()
	q := synth.QuantBlocks(ggml.Q4_K, 4, 1)
	if nan {
		synth.SetBlockScale(ggml.Q4_K, q, 1, 0x7e00)
	}
	f32 := make([]byte, 4*4)
	for i := 0; i < 4; i++ {
		v := math.Float32bits(big)
		f32[4*i], f32[4*i+1], f32[4*i+2], f32[4*i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	g := &synth.GGUF{
		KV: []synth.KV{{Key: "general.architecture", Value: "qwen2"}, {Key: "qwen2.context_length", Value: uint32(32768)}},
		Tensors: []synth.GGUFTensor{
			{Name: "blk.0.attn_q.weight", Type: ggml.Q4_K, Shape: []uint64{4, 256}, Data: q},
			{Name: "token_embd.weight", Type: ggml.F16, Shape: []uint64{4, 4}},
			{Name: "output_norm.weight", Type: ggml.F32, Shape: []uint64{4}, Data: f32},
		},
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, g.Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestScanGGUFCommand(t *testing.T) {
	dir := t.TempDir()
	bad := quantGGUF(t, dir, "bad.gguf", true, 1)
	r := cliRun(t, "scan", bad)
	r.wantCode(t, 1)
	for _, s := range []string{"GGUF file", "256 of 1024 values are not finite (NaN 256", "1 of 4 Q4_K blocks have a non-finite scale"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("scan output lacks %q:\n%s", s, r.stdout)
		}
	}
	r = cliRun(t, "scan", "--json", bad)
	r.wantCode(t, 1)
	if tn := cliJSON(t, r.stdout)[0]["tensors"].([]any)[0].(map[string]any); tn["name"] != "blk.0.attn_q.weight" || tn["bad_scales"] != 1.0 || tn["nan"] != 256.0 {
		t.Errorf("scan --json: %v", tn)
	}
	r = cliRun(t, "inspect", bad)
	r.wantCode(t, 0) // the format is fine: inspect reads headers only
	for _, s := range []string{"architecture    qwen2", "context length  32,768", "Q4_K", "4.5"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("inspect output lacks %q:\n%s", s, r.stdout)
		}
	}
	// A directory of GGUF files is scanned like any checkpoint.
	good := t.TempDir()
	quantGGUF(t, good, "a.gguf", false, 1)
	quantGGUF(t, good, "b.gguf", false, 1)
	r = cliRun(t, "scan", good)
	r.wantCode(t, 0)
	if !strings.Contains(r.stdout, "6 tensors") {
		t.Errorf("directory scan:\n%s", r.stdout)
	}
}

// TestScanGGUFTargetF16: --target-dtype f16 makes a GGUF F32 tensor above the
// fp16 maximum an error, as for safetensors.
func TestScanGGUFTargetF16(t *testing.T) {
	p := quantGGUF(t, t.TempDir(), "big.gguf", false, 1e5)
	r := cliRun(t, "scan", "--json", p)
	r.wantCode(t, 0)
	r = cliRun(t, "scan", "--json", "--target-dtype", "f16", p)
	r.wantCode(t, 1)
	if !strings.Contains(r.stdout, "overflows to Inf in fp16, the target dtype") {
		t.Errorf("%s", r.stdout)
	}
}

// TestDiffAndRepairGGUF: two GGUF files diff value by value (a NaN block
// scale appears as 256 new non-finite values); repair refuses GGUF clearly.
func TestDiffAndRepairGGUF(t *testing.T) {
	dir := t.TempDir()
	good := quantGGUF(t, dir, "good.gguf", false, 1)
	bad := quantGGUF(t, dir, "bad.gguf", true, 1)
	r := cliRun(t, "diff", good, bad)
	r.wantCode(t, 1)
	if !strings.Contains(r.stdout, "256 non-finite values appeared") {
		t.Errorf("diff:\n%s", r.stdout)
	}
	out := filepath.Join(dir, "out.gguf")
	r = cliRun(t, "repair", bad, "--from", good, "-o", out)
	r.wantCode(t, 2)
	if !strings.Contains(r.stderr, "repair reads safetensors and PyTorch weights only") {
		t.Errorf("repair: %s", r.stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("repair wrote an output")
	}
}

// toGGUF converts a safetensors checkpoint to GGUF the way llama.cpp's
// converter names it (same dtypes and bytes, no quantization); swap
// exchanges the data of two same-shaped tensors.
func toGGUF(t *testing.T, dir, out, arch string, swap [2]string) {
	t.Helper()
	c, err := formats.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	g := &synth.GGUF{KV: []synth.KV{{Key: "general.architecture", Value: arch}}}
	data := map[string][]byte{}
	for _, tn := range c.Tensors {
		b, err := synth.TensorBytes(tn)
		if err != nil {
			t.Fatal(err)
		}
		name, ok := diff.GGUFName(arch, tn.Name)
		if !ok {
			continue
		}
		ty, ok := tn.DType.GGML()
		if !ok {
			t.Fatalf("%s: %s", tn.Name, tn.DType)
		}
		data[name] = b
		g.Tensors = append(g.Tensors, synth.GGUFTensor{Name: name, Type: ty, Shape: tn.Shape})
	}
	if swap[0] != "" {
		data[swap[0]], data[swap[1]] = data[swap[1]], data[swap[0]]
	}
	for i := range g.Tensors {
		g.Tensors[i].Data = data[g.Tensors[i].Name]
	}
	if err := os.WriteFile(out, g.Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDiffAcrossFormats: `ckpt diff model/ model.gguf` maps the names and
// matches (exit 0); a GGUF with two layers' tensors swapped is a suspect
// conversion (exit 1); a GGUF of another architecture is a mismatch (exit 1).
func TestDiffAcrossFormats(t *testing.T) {
	src := cliTiny(t, 1, "F16")
	dir := t.TempDir()
	good := filepath.Join(dir, "good.gguf")
	toGGUF(t, src, good, "qwen2", [2]string{})
	r := cliRun(t, "diff", src, good)
	r.wantCode(t, 0)
	if !strings.Contains(r.stdout, "CONVERSION MATCHES") || !strings.Contains(r.stdout, "safetensors names mapped to llama.cpp's names for qwen2") {
		t.Errorf("good conversion:\n%s", r.stdout)
	}
	r = cliRun(t, "diff", "--markdown", src, good)
	r.wantCode(t, 0)
	if !strings.Contains(r.stdout, "conversion matches") {
		t.Errorf("markdown:\n%s", r.stdout)
	}
	swapped := filepath.Join(dir, "swapped.gguf")
	toGGUF(t, src, swapped, "qwen2", [2]string{"blk.0.ffn_down.weight", "blk.1.ffn_down.weight"})
	r = cliRun(t, "diff", "--json", swapped, src)
	r.wantCode(t, 1)
	rep := cliJSON(t, r.stdout)[0]
	if cf := rep["cross_format"].(map[string]any); cf["suspect"] != 2.0 || cf["gguf_side"] != "a" {
		t.Errorf("swapped: %v", cf)
	}
	other := filepath.Join(dir, "other.gguf")
	toGGUF(t, src, other, "llama", [2]string{})
	r = cliRun(t, "diff", src, other)
	r.wantCode(t, 1)
	if !strings.Contains(r.stdout, `MISMATCH: config.json says model_type "qwen2" but the GGUF's general.architecture is "llama"`) {
		t.Errorf("mismatch:\n%s", r.stdout)
	}
}

// TestBisectGGUF: a run whose checkpoints are GGUF files is bisected like any
// other: the first with a NaN block scale is the first unhealthy one.
func TestBisectGGUF(t *testing.T) {
	run := t.TempDir()
	for i, bad := range []bool{false, false, true, true} {
		d := filepath.Join(run, "checkpoint-"+strconv.Itoa(100*(i+1)))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		quantGGUF(t, d, "model.gguf", bad, 1)
	}
	r := cliRun(t, "bisect", "--json", run)
	rep := cliJSON(t, r.stdout)[0]
	first, _ := rep["first_unhealthy"].(map[string]any)
	last, _ := rep["last_healthy"].(map[string]any)
	if first == nil || last == nil || first["step"] != 300.0 || last["step"] != 200.0 {
		t.Errorf("bisect: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
