package formats_test

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/testenv"
)

// Checkpoint directories of PyTorch files: the weights by their HF names, the
// training-state files beside them with their file name as prefix.
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
	want := []string{"optimizer.pt/state.28.exp_avg", "optimizer.pt/state.28.exp_avg_sq", "optimizer.pt/state.72.exp_avg", "optimizer.pt/state.72.exp_avg_sq", "rng_state.pth/cpu"}
	if !slices.Equal(names, want) {
		t.Errorf("tensors %v, want %v", names, want)
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
			// model.pt is weights; optimizer.pt is training state, prefixed.
			if c.Tensor("embedding.weight") == nil || c.Tensor("optimizer.pt/state.0.exp_avg") == nil {
				t.Errorf("%s: weights or optimizer state missing", dir)
			}
		}
		if dir == "NealKapadia__summarizer" && len(c.AllFileErrors()) != 2 {
			t.Errorf("%s: the two LFS-pointer shards are not both errors: %v", dir, c.AllProblems())
		}
	}
}
