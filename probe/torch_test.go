package probe

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// torchPython finds a python3 that can import torch (Debian's python3-torch
// lives under /usr/bin/python3, which another python3 on PATH may shadow).
// Without one the test skips, or fails when CI=true.
func torchPython(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if err := exec.Command(py, "-c", "import torch").Run(); err == nil {
			return py
		}
	}
	msg := "no python3 with torch: install python3-torch (scripts/install-test-deps.sh does) to compare probe with PyTorch"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// TestLogitsMatchPyTorch: in f32 mode every supported family's logits equal
// a PyTorch forward pass (testdata/torch_reference.py, written after Hugging
// Face's modeling code) within 1e-4 relative, top-1 identical.
func TestLogitsMatchPyTorch(t *testing.T) {
	py := torchPython(t)
	script, err := filepath.Abs("testdata/torch_reference.py")
	if err != nil {
		t.Fatal(err)
	}
	tokens := []int{3, 141, 59, 26, 5, 35, 89, 79}
	ids := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(tokens)), ","), "[]")
	dirs := make([]string, len(families))
	for i, d := range families {
		dirs[i] = t.TempDir()
		if err := synth.WriteDecoder(dirs[i], d, formats.BF16, d.Weights(int64(100+i))); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(py, append([]string{script, ids}, dirs...)...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("%s: %v\n%s", script, err, stderr)
	}
	var refs [][][]float64
	if err := json.Unmarshal(out, &refs); err != nil || len(refs) != len(dirs) {
		t.Fatalf("reference output: %v (%d models)", err, len(refs))
	}
	for i, d := range families {
		ref, dir := refs[i], dirs[i]
		t.Run(fmt.Sprintf("%d-%s", i, d.Family), func(t *testing.T) {
			compareLogits(t, logitsOf(t, dir, tokens, formats.F32), ref, "PyTorch")
		})
	}
}
