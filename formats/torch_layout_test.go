package formats_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/testenv"
)

// Checkpoint directories of PyTorch files: the weights by their HF names, the
// training-state files beside them by their key paths, as when given directly.
func TestTorchDirectoryLayouts(t *testing.T) {
	root := testenv.RealdataTorch(t)
	c, err := formats.Open(filepath.Join(root, "Velihh__ML_text"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tn := range c.Tensors {
		names = append(names, tn.Name)
	}
	want := []string{"state.28.exp_avg", "state.28.exp_avg_sq", "state.72.exp_avg", "state.72.exp_avg_sq", "cpu"}
	if !slices.Equal(names, want) {
		t.Errorf("tensors %v, want %v", names, want)
	}
	for _, tn := range c.Tensors {
		if want := map[bool]string{true: "optimizer.pt", false: "rng_state.pth"}[strings.HasPrefix(tn.Name, "state.")]; tn.File.Name != want {
			t.Errorf("%s is in %s, want %s", tn.Name, tn.File.Name, want)
		}
	}
	if len(c.Files) != 4 {
		t.Errorf("%d files, want optimizer.pt, rng_state.pth, scheduler.pt, training_args.bin", len(c.Files))
	}
	for dir, wantLayout := range map[string]formats.Layout{
		"Herutriana44__TinyPeLLM":                          formats.LayoutSingle,
		"TheSotti__Lightweight-Fine-Tuning-to-FM/gpt-lora": formats.LayoutAdapter,
		"NealKapadia__summarizer":                          formats.LayoutSharded,
		"Sujay510__MiniLLM-Architecture":                   formats.LayoutFiles,
	} {
		c, err := formats.Open(filepath.Join(root, dir))
		if err != nil {
			t.Fatal(err)
		}
		if c.Layout != wantLayout {
			t.Errorf("%s: layout %s, want %s", dir, c.Layout, wantLayout)
		}
		if dir == "Sujay510__MiniLLM-Architecture" {
			// model.pt is weights; optimizer.pt is training state.
			if c.Tensor("embedding.weight") == nil || c.Tensor("state.0.exp_avg") == nil || c.Tensor("state.0.exp_avg").File.Name != "optimizer.pt" {
				t.Errorf("%s: weights or optimizer state missing", dir)
			}
		}
		if dir == "NealKapadia__summarizer" && len(c.AllFileErrors()) != 2 {
			t.Errorf("%s: the two LFS-pointer shards are not both errors: %v", dir, c.AllProblems())
		}
	}
}

// A safetensors file whose header length starts with the bytes of a pickle
// PROTO opcode (0x180 = 80 01 ...) is still safetensors, whatever its name.
func TestSafetensorsNotMistakenForPickle(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a.safetensors", "pytorch_model.bin"} {
		// Pad the metadata until the header is 0x180 bytes long.
		var p string
		for pad := 0; pad < 400; pad++ {
			md := map[string]string{"pad": strings.Repeat("x", pad)}
			h, _, err := formats.EncodeHeader([]formats.TensorSpec{{Name: "w", DType: formats.F32, Shape: []uint64{1}}}, md)
			if err != nil {
				t.Fatal(err)
			}
			if len(h) == 0x180 {
				p = filepath.Join(dir, name)
				b := append([]byte{0x80, 0x01, 0, 0, 0, 0, 0, 0}, h...)
				if err := os.WriteFile(p, append(b, 0, 0, 0x80, 0x3f), 0o644); err != nil {
					t.Fatal(err)
				}
				break
			}
		}
		if p == "" {
			t.Fatal("no padding gives a 0x180-byte header")
		}
		f, err := formats.ReadFileHeader(p, name)
		if err != nil {
			t.Fatal(err)
		}
		if f.Format() != formats.ContainerSafetensors || f.Err != nil || len(f.Tensors()) != 1 {
			t.Errorf("%s: read as %s, err %v", name, f.Format(), f.Err)
		}
	}
}
