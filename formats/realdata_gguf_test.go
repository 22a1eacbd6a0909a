package formats_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/testenv"
)

type ggufTruth struct {
	Format string `json:"format"`
	GGUF   struct {
		Version     uint32                     `json:"version"`
		TensorCount uint64                     `json:"tensor_count"`
		KVCount     uint64                     `json:"kv_count"`
		Alignment   uint64                     `json:"alignment"`
		DataStart   int64                      `json:"data_start"`
		KV          map[string]json.RawMessage `json:"kv"`
		Types       map[string]int             `json:"tensor_types"`
		Tensors     []struct {
			Name   string   `json:"name"`
			Type   string   `json:"type"`
			Shape  []uint64 `json:"shape"`
			Offset uint64   `json:"offset"`
			NBytes uint64   `json:"nbytes"`
		} `json:"tensors"`
	} `json:"gguf"`
}

// TestRealdataGGUF reads every file of the real GGUF corpus: the valid ones
// match truth.json (version, counts, keys, alignment, data start, every
// tensor's name, type, shape, offset and length), the malformed and non-GGUF
// ones get a GGUF error.
func TestRealdataGGUF(t *testing.T) {
	root := testenv.RealdataGGUF(t)
	raw, err := os.ReadFile(filepath.Join(root, "truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var truth map[string]ggufTruth
	if err := json.Unmarshal(raw, &truth); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for rel, tr := range truth {
		if tr.Format == "hex-text" {
			continue
		}
		seen++
		t.Run(rel, func(t *testing.T) {
			f, err := formats.ReadFileHeader(filepath.Join(root, filepath.FromSlash(rel)), filepath.Base(rel))
			if err != nil {
				t.Fatal(err)
			}
			if f.Format() != formats.ContainerGGUF {
				t.Fatalf("read as %s", f.Format())
			}
			if tr.Format != "gguf" {
				if f.Err == nil || !(errors.Is(f.Err, formats.ErrGGUF) || errors.Is(f.Err, formats.ErrTruncated)) {
					t.Fatalf("%s: got %v, want a GGUF error", tr.Format, f.Err)
				}
				t.Logf("%s: %v", tr.Format, f.Err)
				return
			}
			if f.Err != nil || len(f.Problems) != 0 {
				t.Fatalf("valid file: %v %v", f.Err, f.Problems)
			}
			h, g := f.GGUF, tr.GGUF
			if h.Version != g.Version || h.TensorCount != g.TensorCount || h.KVCount != g.KVCount || h.Alignment != g.Alignment || h.DataStart != g.DataStart {
				t.Errorf("header v%d %d tensors %d kv align %d data %d; truth v%d %d %d %d %d",
					h.Version, h.TensorCount, h.KVCount, h.Alignment, h.DataStart, g.Version, g.TensorCount, g.KVCount, g.Alignment, g.DataStart)
			}
			for k := range g.KV {
				if _, ok := h.Get(k); !ok {
					t.Errorf("key %q missing", k)
				}
			}
			ts := f.Tensors()
			if len(ts) != len(g.Tensors) {
				t.Fatalf("%d tensors, truth %d", len(ts), len(g.Tensors))
			}
			types := map[string]int{}
			for i, want := range g.Tensors {
				got := ts[i]
				shape := slices.Clone(want.Shape)
				slices.Reverse(shape)
				types[string(got.DType)]++
				if got.Name != want.Name || string(got.DType) != want.Type || !slices.Equal(got.Shape, shape) ||
					got.Begin != want.Offset || got.End-got.Begin != want.NBytes || got.Cut {
					t.Errorf("tensor %d: %+v, truth %+v", i, got.TensorInfo, want)
				}
			}
			if len(g.Types) > 0 && !mapsEqual(types, g.Types) {
				t.Errorf("types %v, truth %v", types, g.Types)
			}
		})
	}
	if seen < 10 {
		t.Errorf("only %d files in truth.json", seen)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
