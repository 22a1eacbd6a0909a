package main

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/internal/hostile"
	"github.com/ckpt-tool/ckpt/internal/testenv"
)

// A PyTorch file whose pickle would create a marker file (through
// posix.system) leaves no marker after any command: ckpt runs nothing.
func TestMaliciousPickleRunsNothing(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "pwned")
	cmd := "touch " + marker
	zipPath, legacyPath := filepath.Join(dir, "evil.pt"), filepath.Join(dir, "evil-legacy.bin")
	if err := hostile.WriteTorchMalicious(zipPath, legacyPath, cmd); err != nil {
		t.Fatal(err)
	}
	ckptDir := filepath.Join(dir, "checkpoint")
	if err := os.Mkdir(ckptDir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(zipPath)
	if err := os.WriteFile(filepath.Join(ckptDir, "pytorch_model.bin"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ckptDir, "optimizer.pt"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"inspect", zipPath}, {"inspect", "--json", legacyPath}, {"scan", zipPath}, {"scan", "--json", legacyPath},
		{"scan", "--source", "mmap", ckptDir}, {"inspect", ckptDir},
		{"diff", zipPath, legacyPath}, {"bisect", zipPath, ckptDir},
		{"repair", ckptDir, ckptDir, "-o", filepath.Join(dir, "out")},
	} {
		r := cliRun(t, args...)
		if r.code == 0 {
			t.Errorf("%v: exit 0 on a malicious file", args)
		}
		if args[0] == "inspect" || args[0] == "scan" {
			if r.code != 1 || !strings.Contains(r.stdout, "posix.system") {
				t.Errorf("%v: exit %d without naming posix.system:\n%s%s", args, r.code, r.stdout, r.stderr)
			}
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatalf("%v: the marker file exists: the payload ran", args)
		}
	}
	r := cliRun(t, "scan", "--json", zipPath)
	var rep struct {
		Findings []struct {
			Check, Severity, Global string
			Offset                  *int64
		}
		Tensors []struct{ Format string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range rep.Findings {
		if f.Check == "pickle" && f.Severity == "error" && f.Global == "posix.system" && f.Offset != nil && *f.Offset > 0 {
			found = true
		}
	}
	if !found || len(rep.Tensors) != 1 || rep.Tensors[0].Format != "torch" {
		t.Errorf("JSON lacks the pickle finding or the torch tensor: %s", r.stdout)
	}
}

// The real PyTorch files, end to end: benign files exit 0 (warnings allowed),
// malicious ones exit 1 naming their dangerous global.
func TestRealTorchFilesCLI(t *testing.T) {
	root := testenv.RealdataTorch(t)
	for rel, want := range map[string]int{
		"PdAlbedo__Recognition_using_Deep_Networks/model.pt": 0,
		"Velihh__ML_text":                                           0,
		"Herutriana44__TinyPeLLM":                                   0,
		"TheSotti__Lightweight-Fine-Tuning-to-FM/gpt-lora":          0,
		"mmaitre314__picklescan/tests/data/pytorch_model.bin":       0,
		"mmaitre314__picklescan/tests/data/pytorch_magic_bypass.pt": 1,
		"protectai__modelscan/malicious0.pt":                        1,
		"protectai__modelscan/tests/data/unsafe_zip_pytorch.pt":     1,
		"s-neer4j__offensive-language-detection/pytorch_model.bin":  1,
		"NealKapadia__summarizer":                                   1,
		"mmaitre314__picklescan/tests/data/bad_pytorch.pt":          1,
	} {
		r := cliRun(t, "scan", filepath.Join(root, rel))
		if r.code != want {
			t.Errorf("%s: exit %d, want %d\n%s%s", rel, r.code, want, r.stdout, r.stderr)
		}
	}
}

// ckpt convert end to end: a real .bin to safetensors (exit 0, diff identical
// with --clone-tied), a malicious file refused (exit 2, nothing written).
func TestConvertCLI(t *testing.T) {
	in := filepath.Join(testenv.RealdataTorch(t), "Herutriana44__TinyPeLLM")
	dir := t.TempDir()
	out := filepath.Join(dir, "model.safetensors")
	if r := cliRun(t, "convert", "--clone-tied", in, "-o", out); r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := cliRun(t, "diff", in, out); r.code != 0 {
		t.Errorf("diff .bin vs converted: exit %d\n%s", r.code, r.stdout)
	}
	if r := cliRun(t, "convert", in, "-o", out); r.code != 2 || !strings.Contains(r.stderr, "overwrite") {
		t.Errorf("existing output: exit %d %s", r.code, r.stderr)
	}
	evil, legacy := filepath.Join(dir, "evil.pt"), filepath.Join(dir, "evil.bin")
	if err := hostile.WriteTorchMalicious(evil, legacy, "true"); err != nil {
		t.Fatal(err)
	}
	r := cliRun(t, "convert", evil, "-o", filepath.Join(dir, "evil.safetensors"))
	if r.code != 2 || !strings.Contains(r.stderr, "posix.system") {
		t.Errorf("malicious input: exit %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "evil.safetensors")); err == nil {
		t.Error("a malicious file was converted")
	}
}

// ckpt repair end to end on a real .bin: BAD the .bin checkpoint, GOOD its
// safetensors conversion; the output is safetensors, verified, and diff finds
// it identical to the .bin. A GOOD whose pickle names code is refused (exit 2).
func TestRepairTorchCLI(t *testing.T) {
	in := filepath.Join(testenv.RealdataTorch(t), "Herutriana44__TinyPeLLM")
	dir := t.TempDir()
	good := filepath.Join(dir, "good.safetensors")
	if r := cliRun(t, "convert", "--clone-tied", in, "-o", good); r.code != 0 {
		t.Fatalf("convert: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	out := filepath.Join(dir, "repaired")
	r := cliRun(t, "repair", in, "--from", good, "-o", out)
	if r.code != 0 || !strings.Contains(r.stdout, "verified:") ||
		!strings.Contains(r.stdout, `tied weights written once in model.safetensors (listed in its __metadata__ "tied_tensors"): lm_head.weight → model.embed_tokens.weight`) {
		t.Fatalf("repair: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "model.safetensors")); err != nil {
		t.Errorf("no model.safetensors in OUT: %v", err)
	}
	// Every tensor identical; the tied lm_head is written once (listed in
	// __metadata__ "tied_tensors"), so it is only in the .bin.
	var d struct {
		Tensors []struct{ Name, Status string }
	}
	if err := json.Unmarshal([]byte(cliRun(t, "diff", "--json", in, out).stdout), &d); err != nil {
		t.Fatal(err)
	}
	identical := 0
	for _, tn := range d.Tensors {
		switch {
		case tn.Status == "identical":
			identical++
		case tn.Name != "lm_head.weight" || tn.Status != "only_a":
			t.Errorf("diff .bin vs repaired: %s %s", tn.Name, tn.Status)
		}
	}
	if identical != 23 {
		t.Errorf("diff .bin vs repaired: %d identical tensors, want 23", identical)
	}
	evil, legacy := filepath.Join(dir, "evil.pt"), filepath.Join(dir, "evil.bin")
	if err := hostile.WriteTorchMalicious(evil, legacy, "true"); err != nil {
		t.Fatal(err)
	}
	r = cliRun(t, "repair", good, "--from", evil, "-o", filepath.Join(dir, "evil-out.safetensors"))
	if r.code != 2 || !strings.Contains(r.stderr, "posix.system") {
		t.Errorf("malicious GOOD: exit %d %s", r.code, r.stderr)
	}
}

// scan --json of a .bin with tied weights: the tied tensor says so and has
// the statistics of the tensor it shares bytes with.
func TestScanJSONTiedTensor(t *testing.T) {
	in := filepath.Join(testenv.RealdataTorch(t), "Herutriana44__TinyPeLLM")
	r := cliRun(t, "scan", "--json", in)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	var rep struct {
		Files   []struct{ Format string }
		Tensors []struct {
			Name       string
			Format     string
			TiedTo     string `json:"tied_to"`
			Contiguous *bool
			L2         *float64
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	l2 := map[string]float64{}
	tied := ""
	for _, tn := range rep.Tensors {
		if tn.L2 != nil {
			l2[tn.Name] = *tn.L2
		}
		if tn.TiedTo != "" {
			tied = tn.Name + "->" + tn.TiedTo
		}
		if tn.Contiguous != nil {
			t.Errorf("%s: contiguous is set on a contiguous tensor", tn.Name)
		}
	}
	if tied != "lm_head.weight->model.embed_tokens.weight" || l2["lm_head.weight"] != l2["model.embed_tokens.weight"] || l2["lm_head.weight"] == 0 {
		t.Errorf("tied %q, l2 %v vs %v", tied, l2["lm_head.weight"], l2["model.embed_tokens.weight"])
	}
	if len(rep.Files) != 1 || rep.Files[0].Format != "torch" {
		t.Errorf("files %+v", rep.Files)
	}
}

// A transposed view: JSON says "contiguous": false, and the first NaN is
// reported at its index in the view (C order through the strides), not in
// the storage.
func TestScanJSONView(t *testing.T) {
	str := func(s string) string { return "X" + string([]byte{byte(len(s)), 0, 0, 0}) + s }
	pkl := "\x80\x02}(" + str("w") + "ctorch._utils\n_rebuild_tensor_v2\n((" + str("storage") + "ctorch\nFloatStorage\n" +
		str("0") + str("cpu") + "K\x04tQK\x00K\x02K\x02\x86K\x01K\x02\x86\x89ccollections\nOrderedDict\n)RtRu."
	data := make([]byte, 16)
	for i, bits := range []uint32{0x3f800000, 0x7fc00000, 0x40400000, 0x40800000} { // 1, NaN, 3, 4
		binary.LittleEndian.PutUint32(data[4*i:], bits)
	}
	b, err := hostile.TorchZip([]hostile.ZipRecord{{Name: "v/data.pkl", Data: []byte(pkl)}, {Name: "v/data/0", Data: data}})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "view.pt")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r := cliRun(t, "scan", "--json", p)
	var rep struct {
		Tensors []struct {
			Contiguous          *bool
			NaN                 uint64 `json:"nan"`
			FirstNonfiniteIndex *int64 `json:"first_nonfinite_index"`
			Max                 *float64
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || len(rep.Tensors) != 1 {
		t.Fatalf("%v\n%s%s", err, r.stdout, r.stderr)
	}
	v := rep.Tensors[0]
	// The view is [[1, 3], [NaN, 4]]: the NaN is at flat index 2.
	if v.Contiguous == nil || *v.Contiguous || v.NaN != 1 || v.FirstNonfiniteIndex == nil || *v.FirstNonfiniteIndex != 2 || v.Max == nil || *v.Max != 4 {
		t.Errorf("got %+v\n%s", v, r.stdout)
	}
}
