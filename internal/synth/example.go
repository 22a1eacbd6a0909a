package synth

import (
	"path/filepath"

	"github.com/ckpt-tool/ckpt/formats"
)

// The committed examples under testdata/example: what the README's quick start
// runs on. Tests check that the committed files are exactly what
// WriteExamples makes.
const (
	// ExampleRoot holds the examples, relative to the module root.
	ExampleRoot = "testdata/example"
	// ExampleDir is the healthy example checkpoint.
	ExampleDir = ExampleRoot + "/tiny-qwen2"
	// ExampleRunDir is the example training run.
	ExampleRunDir = ExampleRoot + "/run"
)

// Example is the recipe of the healthy example checkpoint.
var Example = Options{Arch: Tiny, DType: formats.BF16, Seed: 1}

// ExampleRun is the recipe of the example run: eight checkpoints of the tiny
// model, a learning-rate jump after step 350 (the drift onset lies between
// checkpoint-300 and checkpoint-400), and a divergence at step 650 that leaves
// NaN in two tensors of layer 2 from checkpoint-700 on.
var ExampleRun = RunOptions{
	Arch: Tiny, DType: formats.BF16, Seed: 1,
	Checkpoints: 8, JumpStep: 350, NaNStep: 650,
	NaNTensors: []string{"model.layers.2.mlp.down_proj.weight", "model.layers.2.self_attn.o_proj.weight"},
}

// WriteExamples writes both examples under root (the module's ExampleRoot when
// regenerating the committed ones): root/tiny-qwen2 and root/run. With
// overwrite, existing weight files are replaced.
func WriteExamples(root string, overwrite bool) error {
	o := Example
	o.Overwrite = overwrite
	if err := WriteCheckpoint(filepath.Join(root, filepath.Base(ExampleDir)), o); err != nil {
		return err
	}
	r := ExampleRun
	r.Overwrite = overwrite
	_, err := WriteRun(filepath.Join(root, filepath.Base(ExampleRunDir)), r)
	return err
}
