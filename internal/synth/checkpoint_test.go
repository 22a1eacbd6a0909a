package synth_test

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

func TestGeneratedCheckpointsOpenCleanWithConfigShapes(t *testing.T) {
	for _, dt := range []formats.DType{formats.BF16, formats.F16, formats.F32, formats.F64, formats.F8_E4M3, formats.F8_E5M2} {
		for _, shards := range []int{0, 3} {
			dir := writeTiny(t, synth.Options{DType: dt, Seed: 7, Shards: shards})
			c := openClean(t, dir)
			if c.Config == nil || c.Config.HiddenSize != synth.Tiny.Hidden || c.Config.NumHiddenLayers != synth.Tiny.Layers {
				t.Fatalf("%s/%d shards: config.json not read back: %+v", dt, shards, c.Config)
			}
			wantLayout, wantFiles := formats.LayoutSingle, 1
			if shards > 1 {
				wantLayout, wantFiles = formats.LayoutSharded, shards
			}
			if c.Layout != wantLayout || len(c.Files) != wantFiles {
				t.Fatalf("%s/%d shards: layout %s with %d files", dt, shards, c.Layout, len(c.Files))
			}
			specs := synth.Tiny.Specs(dt)
			if len(c.Tensors) != len(specs) {
				t.Fatalf("%s: %d tensors, want %d", dt, len(c.Tensors), len(specs))
			}
			for _, s := range specs {
				ten := c.Tensor(s.Name)
				if ten == nil {
					t.Fatalf("%s: missing %s", dt, s.Name)
				}
				if ten.DType != dt || len(ten.Shape) != len(s.Shape) {
					t.Fatalf("%s: %s is %s %v", dt, s.Name, ten.DType, ten.Shape)
				}
				for i := range s.Shape {
					if ten.Shape[i] != s.Shape[i] {
						t.Fatalf("%s: %s shape %v want %v", dt, s.Name, ten.Shape, s.Shape)
					}
				}
			}
		}
	}
}

func TestShardedIndexIsConsistent(t *testing.T) {
	for _, shards := range []int{2, 5, 8} {
		dir := writeTiny(t, synth.Options{Seed: 1, Shards: shards})
		ix, err := formats.ReadIndex(filepath.Join(dir, synth.IndexName))
		if err != nil {
			t.Fatal(err)
		}
		if got := ix.Shards(); len(got) != shards || got[0] != synth.ShardName(1, shards) || got[shards-1] != synth.ShardName(shards, shards) {
			t.Fatalf("%d shards: index names %v", shards, got)
		}
		var total uint64
		seen := 0
		for _, name := range ix.Shards() {
			f, err := formats.ReadFileHeader(filepath.Join(dir, name), name)
			if err != nil || f.Err != nil {
				t.Fatalf("%s: %v %v", name, err, f.Err)
			}
			if len(f.Header.Tensors) == 0 {
				t.Errorf("%s is empty", name)
			}
			for _, ten := range f.Header.Tensors {
				total += ten.Bytes()
				seen++
				if ix.WeightMap[ten.Name] != name {
					t.Errorf("%s is in %s, the index says %q", ten.Name, name, ix.WeightMap[ten.Name])
				}
			}
		}
		if seen != len(ix.WeightMap) {
			t.Errorf("%d tensors in shards, %d in weight_map", seen, len(ix.WeightMap))
		}
		if ts, ok := ix.TotalSize(); !ok || ts != float64(total) {
			t.Errorf("total_size %v (present %v), shards hold %d bytes", ts, ok, total)
		}
		openClean(t, dir)
	}
}

func TestSameTensorBytesWhateverTheSharding(t *testing.T) {
	single := openClean(t, writeTiny(t, synth.Options{Seed: 3}))
	sharded := openClean(t, writeTiny(t, synth.Options{Seed: 3, Shards: 4}))
	for _, ten := range single.Tensors {
		if !bytes.Equal(tensorData(t, single, ten.Name), tensorData(t, sharded, ten.Name)) {
			t.Errorf("%s differs between the single and the sharded checkpoint", ten.Name)
		}
	}
}

func TestDeterministicPerSeed(t *testing.T) {
	a := readFile(t, filepath.Join(writeTiny(t, synth.Options{Seed: 42}), "model.safetensors"))
	b := readFile(t, filepath.Join(writeTiny(t, synth.Options{Seed: 42}), "model.safetensors"))
	c := readFile(t, filepath.Join(writeTiny(t, synth.Options{Seed: 43}), "model.safetensors"))
	if !bytes.Equal(a, b) {
		t.Error("the same seed gave different bytes")
	}
	if bytes.Equal(a, c) {
		t.Error("different seeds gave the same bytes")
	}
}

// Initialisation: normal(0, 0.02) matrices, ones for norms, normal(0, 0.01)
// biases; Scale multiplies everything. Checked in float64 from F32 values.
func TestInitialisationStatistics(t *testing.T) {
	arch := synth.Arch{Name: "stats", VocabSize: 512, Hidden: 128, Intermediate: 256, Layers: 1, Heads: 4, KVHeads: 2}
	for _, scale := range []float64{1, 1000} {
		c := openClean(t, writeTiny(t, synth.Options{Arch: arch, DType: formats.F32, Seed: 5, Scale: scale}))
		for name, want := range map[string][2]float64{
			"model.embed_tokens.weight":             {0, 0.02},
			"model.layers.0.mlp.down_proj.weight":   {0, 0.02},
			"model.layers.0.self_attn.q_proj.bias":  {0, 0.01},
			"model.layers.0.input_layernorm.weight": {1, 0},
			"model.norm.weight":                     {1, 0},
		} {
			v := values(t, c, name)
			mean, std := meanStd(v)
			wm, ws := want[0]*scale, want[1]*scale
			tol := 0.1*ws + 1e-12
			if math.Abs(mean-wm) > tol+3*ws/math.Sqrt(float64(len(v))) || math.Abs(std-ws) > tol {
				t.Errorf("scale %g: %s: mean %g std %g, want %g and %g", scale, name, mean, std, wm, ws)
			}
		}
	}
}

func TestRefusesToOverwriteUnlessAsked(t *testing.T) {
	dir := writeTiny(t, synth.Options{Seed: 1})
	before := readFile(t, filepath.Join(dir, "model.safetensors"))
	if err := synth.WriteCheckpoint(dir, synth.Options{Arch: synth.Tiny, Seed: 2}); err == nil {
		t.Fatal("overwrote an existing model.safetensors")
	}
	if !bytes.Equal(before, readFile(t, filepath.Join(dir, "model.safetensors"))) {
		t.Fatal("a refused write changed the file")
	}
	if err := synth.WriteCheckpoint(dir, synth.Options{Arch: synth.Tiny, Seed: 2, Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "config.json" && e.Name() != "model.safetensors" {
			t.Errorf("left behind %s", e.Name())
		}
	}
}

func TestBadOptionsAreErrors(t *testing.T) {
	for name, o := range map[string]synth.Options{
		"zero arch":    {},
		"int dtype":    {Arch: synth.Tiny, DType: formats.I32},
		"packed dtype": {Arch: synth.Tiny, DType: formats.F4},
		"many shards":  {Arch: synth.Tiny, Shards: 1000},
		"heads":        {Arch: synth.Arch{Name: "x", VocabSize: 8, Hidden: 10, Intermediate: 8, Layers: 1, Heads: 3, KVHeads: 1}},
	} {
		if err := synth.WriteCheckpoint(t.TempDir(), o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
