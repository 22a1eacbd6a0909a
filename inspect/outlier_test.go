package inspect

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// testArch is Qwen2-shaped and small enough to generate in milliseconds.
var testArch = synth.Arch{Name: "test", VocabSize: 512, Hidden: 64, Intermediate: 192, Layers: 8, Heads: 4, KVHeads: 2}

// generate writes a healthy Qwen2-shaped checkpoint and returns its weights file.
func generate(t *testing.T, dt formats.DType, seed int64) string {
	t.Helper()
	dir := t.TempDir()
	if err := synth.WriteCheckpoint(dir, synth.Options{Arch: testArch, DType: dt, Seed: seed}); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "model.safetensors")
}

// errorsOn returns the tensors named by error findings, and every finding of
// the check outlier.
func errorsOn(r *Result) (map[string]bool, []Finding) {
	errs := map[string]bool{}
	var outliers []Finding
	for _, f := range r.Findings {
		if f.Severity == "error" {
			errs[f.Tensor] = true
		}
		if f.Check == CheckOutlier {
			outliers = append(outliers, f)
		}
	}
	return errs, outliers
}

func scan(t *testing.T, path string, opts Options) *Result {
	t.Helper()
	r, err := ScanPath(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestHealthyGeneratedNoFindings: realistic initialisations in every common
// dtype give no outlier finding at all.
func TestHealthyGeneratedNoFindings(t *testing.T) {
	for i, dt := range []formats.DType{formats.BF16, formats.F16, formats.F32} {
		r := scan(t, generate(t, dt, int64(i+1)), Options{})
		if errs, outliers := errorsOn(r); len(errs) > 0 || len(outliers) > 0 {
			t.Fatalf("%s: healthy checkpoint has findings: %+v", dt, r.Findings)
		}
	}
}

// flipBit flips bit `bit` of element elem of a tensor in a file (a test-only
// injector for exponent bits other than the top one).
func flipBit(t *testing.T, path, tensor string, elem int, bit uint) {
	t.Helper()
	c, err := formats.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	tt := c.Tensor(tensor)
	if tt == nil {
		t.Fatalf("no tensor %q", tensor)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	w := int64(tt.DType.Size())
	off := tt.Offset + int64(elem)*w + int64(bit/8)
	raw[off] ^= 1 << (bit % 8)
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFlippedExponentBitGenerated flips each exponent bit of a few weights of
// a generated checkpoint in turn. The top bit (the classic flip: 0.02 becomes
// about 1e36) must be an error on that tensor and on no other; any flip must
// leave every other tensor free of errors, and a flip that makes the weight a
// thousand times larger than anything else in the tensor must be an error on
// it (the lower bits stay below 1e30: the comparison with the same role in
// the other layers catches them).
func TestFlippedExponentBitGenerated(t *testing.T) {
	const victim = "model.layers.5.mlp.down_proj.weight"
	for _, dt := range []formats.DType{formats.BF16, formats.F32} {
		clean := generate(t, dt, 7)
		base := scan(t, clean, Options{})
		var absmax float64
		for _, s := range base.Tensors {
			if s.Name == victim {
				absmax = s.AbsMax
			}
		}
		pristine, err := os.ReadFile(clean)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := formats.Open(clean)
		tt := c.Tensor(victim)
		expLow := uint(formats.F32.Bits() - 9) // 23
		if dt == formats.BF16 {
			expLow = 7
		}
		for _, elem := range []int{0, 1234, 5000} {
			for bit := expLow; bit <= uint(dt.Bits()-2); bit++ {
				path := filepath.Join(t.TempDir(), "model.safetensors")
				if err := os.WriteFile(path, pristine, 0o644); err != nil {
					t.Fatal(err)
				}
				flipBit(t, path, victim, elem, bit)
				data, _ := os.ReadFile(path)
				v := math.Abs(formats.Element(dt, data[tt.Offset:], elem))
				r := scan(t, path, Options{})
				errs, _ := errorsOn(r)
				for name := range errs {
					if name != victim {
						t.Fatalf("%s elem %d bit %d: error on %s, which was not touched: %+v", dt, elem, bit, name, r.Findings)
					}
				}
				top := bit == uint(dt.Bits()-2)
				if (top || v > 1000*absmax) && !errs[victim] {
					t.Fatalf("%s elem %d bit %d: |value| %g (tensor absmax %g) is no error: %+v", dt, elem, bit, v, absmax, r.Findings)
				}
			}
		}
	}
}

// TestFlippedExponentBitReal flips the top exponent bit of one weight of a real
// LoRA adapter with 24 layers of each role.
func TestFlippedExponentBitReal(t *testing.T) {
	src := filepath.Join(realdata(t), "MuzammelMokhtar__HIGH-PERFORMANCE-INFERENCE-ENGINE-USING-QWEN-2.5/lora_adapter/adapter_model.safetensors")
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Skip(err)
	}
	before := scan(t, src, Options{})
	if errs, outliers := errorsOn(before); len(errs) > 0 || len(outliers) > 0 {
		t.Fatalf("the real adapter has findings before the flip: %+v", before.Findings)
	}
	for _, victim := range []string{
		"base_model.model.model.layers.11.self_attn.q_proj.lora_A.weight",
		"base_model.model.model.layers.3.self_attn.v_proj.lora_B.weight",
	} {
		path := filepath.Join(t.TempDir(), "adapter_model.safetensors")
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := synth.FlipExponentBit(path, victim, 100); err != nil {
			t.Fatal(err)
		}
		r := scan(t, path, Options{})
		errs, _ := errorsOn(r)
		if len(errs) != 1 || !errs[victim] {
			t.Fatalf("errors on %v, want only %s; findings %+v", errs, victim, r.Findings)
		}
	}
}

// TestRoleOutliers scales whole tensors of one layer: 8x is a warning (far
// from its peers, but not proof of damage), 200x an error, and a tensor 200x
// smaller than its peers only a warning; and one weight set to -30 in a
// BF16 matrix is an error through the comparison of absmax alone.
func TestRoleOutliers(t *testing.T) {
	cases := []struct {
		tensor string
		factor float64
		sev    string
	}{
		{"model.layers.2.self_attn.o_proj.weight", 8, "warning"},
		{"model.layers.6.mlp.up_proj.weight", 200, "error"},
		{"model.layers.1.mlp.gate_proj.weight", 1.0 / 200, "warning"},
	}
	for _, c := range cases {
		path := generate(t, formats.F32, 3)
		if err := synth.ScaleTensor(path, c.tensor, c.factor); err != nil {
			t.Fatal(err)
		}
		r := scan(t, path, Options{})
		_, outliers := errorsOn(r)
		if len(outliers) != 1 || outliers[0].Tensor != c.tensor || outliers[0].Severity != c.sev {
			t.Fatalf("%s x%g: want one %s on it, got %+v", c.tensor, c.factor, c.sev, outliers)
		}
		if !strings.Contains(outliers[0].Message, "model.layers.*.") {
			t.Errorf("message does not name the role: %s", outliers[0].Message)
		}
	}
	// One weight set to 30 (a few hundred times the largest of its peers, far
	// below 1e30 and below the fp16 limit): only the role comparison sees it.
	path := generate(t, formats.BF16, 4)
	const victim = "model.layers.4.self_attn.q_proj.weight"
	if err := synth.SetValues(path, victim, map[int]float64{77: -30}); err != nil {
		t.Fatal(err)
	}
	_, outliers := errorsOn(scan(t, path, Options{}))
	if len(outliers) != 1 || outliers[0].Tensor != victim || outliers[0].Severity != "error" {
		t.Fatalf("one weight of -30: want one error on %s, got %+v", victim, outliers)
	}
}

// TestAbsoluteSignatures covers the rules that need no peers: a huge value,
// an all-zero weight matrix (warning, or error when asked), fp16 overflow
// (warning, error with TargetDType F16), and biases and 1-D zero tensors,
// which are fine.
func TestAbsoluteSignatures(t *testing.T) {
	f32 := func(vals ...float32) []byte {
		b := make([]byte, 4*len(vals))
		for i, v := range vals {
			encode(formats.F32, b[4*i:], float64(v))
		}
		return b
	}
	zeros := make([]byte, 4*64)
	path := filepath.Join(t.TempDir(), "m.safetensors")
	writeST(t, path, []testTensor{
		{"huge", formats.F32, []uint64{2, 2}, f32(0.1, -0.2, 3e31, 0.01)},
		{"big", formats.F32, []uint64{4}, f32(0.1, -70000, 3, 0.01)},
		{"fine", formats.F32, []uint64{4}, f32(0.1, -65504, 3, 0.01)},
		{"zero.weight", formats.F32, []uint64{8, 8}, zeros},
		{"zero.bias", formats.F32, []uint64{8, 8}, zeros},
		{"zero1d.weight", formats.F32, []uint64{64}, zeros},
	}, false)
	want := map[string]string{"huge": "error", "big": "warning", "zero.weight": "warning"}
	check := func(opts Options, want map[string]string) {
		t.Helper()
		r := scan(t, path, opts)
		got := map[string]string{}
		for _, f := range r.Findings {
			if f.Check == CheckOutlier {
				got[f.Tensor] = f.Severity
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%+v: got %v, want %v", opts, got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("%+v: got %v, want %v", opts, got, want)
			}
		}
	}
	check(Options{}, want)
	check(Options{TargetDType: formats.F16, Thresholds: Thresholds{ZeroMatrixError: true}},
		map[string]string{"huge": "error", "big": "error", "zero.weight": "error"})
	check(Options{Thresholds: Thresholds{HugeAbs: math.Inf(1)}},
		map[string]string{"huge": "warning", "big": "warning", "zero.weight": "warning"})
}

func TestDefaultThresholdsFill(t *testing.T) {
	if (Thresholds{}).withDefaults() != DefaultThresholds() {
		t.Fatal("a zero Thresholds does not mean the defaults")
	}
	th := Thresholds{OutlierWarnZ: 3}.withDefaults()
	if th.OutlierWarnZ != 3 || th.HugeAbs != DefaultThresholds().HugeAbs {
		t.Fatalf("one field set: %+v", th)
	}
}
