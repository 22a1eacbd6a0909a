package main

import (
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
