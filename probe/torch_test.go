package probe

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/synth"
	"github.com/ckpt-tool/ckpt/internal/testenv"
)

// TestLogitsMatchPyTorch: in f32 mode every supported family's logits equal
// a PyTorch forward pass (testdata/torch_reference.py, written after Hugging
// Face's modeling code) within 1e-4 relative, top-1 identical; in bf16 they
// are within bf16Tolerance of PyTorch's bfloat16 forward pass.
// bf16Tolerance bounds probe's bf16 logits against PyTorch's (CPU, bfloat16)
// relative to their absmax: measured up to 1.2% (two bf16 steps) on these
// models. A sanity check only: probe's f32 logits are as close to them on
// such small random models, so it does not prove each rounding point; the
// f16 overflow tests do that.
const bf16Tolerance = 0.03

func TestLogitsMatchPyTorch(t *testing.T) {
	py := testenv.TorchPython(t)
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
	out, err := exec.Command(py, append([]string{script, "float32,bfloat16", ids}, dirs...)...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("%s: %v\n%s", script, err, stderr)
	}
	var refs map[string][][][]float64
	if err := json.Unmarshal(out, &refs); err != nil || len(refs["float32"]) != len(dirs) || len(refs["bfloat16"]) != len(dirs) {
		t.Fatalf("reference output: %v", err)
	}
	for i, d := range families {
		dir := dirs[i]
		t.Run(fmt.Sprintf("%d-%s", i, d.Family), func(t *testing.T) {
			compareLogits(t, logitsOf(t, dir, tokens, formats.F32), refs["float32"][i], "PyTorch", 1e-4, true)
			// In bf16 the rounding points are the same, the order of the
			// float32 sums inside each product is not: close, not equal.
			compareLogits(t, logitsOf(t, dir, tokens, formats.BF16), refs["bfloat16"][i], "PyTorch in bfloat16", bf16Tolerance, false)
		})
	}
}
