package convert_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ckpt-tool/ckpt/convert"
	"github.com/ckpt-tool/ckpt/diff"
	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/hostile"
	"github.com/ckpt-tool/ckpt/internal/testenv"
)

// A real pytorch_model.bin with a tied lm_head: written once and listed in
// __metadata__, or cloned by option; every tensor identical to the source.
func TestConvertRealTiedCheckpoint(t *testing.T) {
	in := filepath.Join(testenv.RealdataTorch(t), "Herutriana44__TinyPeLLM")
	out := filepath.Join(t.TempDir(), "tiny")
	res, err := convert.Convert(in, out, convert.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Tensors != 23 || res.Tied["lm_head.weight"] != "model.embed_tokens.weight" {
		t.Fatalf("%d tensors, tied %v", res.Tensors, res.Tied)
	}
	f, err := formats.ReadFileHeader(filepath.Join(out, "model.safetensors"), "model.safetensors")
	if err != nil || f.Err != nil {
		t.Fatal(err, f.Err)
	}
	md := f.Header.Metadata
	var tied map[string]string
	if md["format"] != "pt" || json.Unmarshal([]byte(md[convert.TiedKey]), &tied) != nil || tied["lm_head.weight"] != "model.embed_tokens.weight" {
		t.Errorf("metadata %v", md)
	}
	cloned := filepath.Join(t.TempDir(), "cloned.safetensors")
	if _, err := convert.Convert(in, cloned, convert.Options{CloneTied: true}); err != nil {
		t.Fatal(err)
	}
	a, _ := formats.Open(in)
	b, _ := formats.Open(cloned)
	r, err := diff.Compare(context.Background(), a, b, diff.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Summary.Same() || r.Summary.Identical != 24 {
		t.Errorf("the cloned conversion differs from the .bin")
	}
}

// Sharding by size, with an index like save_pretrained's.
func TestConvertShards(t *testing.T) {
	in := filepath.Join(testenv.RealdataTorch(t), "Sujay510__MiniLLM-Architecture", "model.pt")
	out := filepath.Join(t.TempDir(), "mini")
	res, err := convert.Convert(in, out, convert.Options{MaxShardSize: 500_000})
	if err != nil {
		t.Fatal(err)
	}
	c, err := formats.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	if c.Layout != formats.LayoutSharded || len(c.Files) < 2 || len(c.Tensors) != 68 || res.Tensors != 68 {
		t.Fatalf("layout %s, %d files, %d tensors", c.Layout, len(c.Files), len(c.Tensors))
	}
	for _, p := range c.AllProblems() {
		t.Errorf("problem: %v", p.Err)
	}
	if _, err := convert.Convert(in, out, convert.Options{MaxShardSize: 500_000}); err == nil {
		t.Error("existing output replaced without Overwrite")
	}
}

// A pickle that names code is refused and nothing is written.
func TestConvertRefusesCode(t *testing.T) {
	dir := t.TempDir()
	zp, lp := filepath.Join(dir, "evil.pt"), filepath.Join(dir, "evil2.pt")
	if err := hostile.WriteTorchMalicious(zp, lp, "touch "+filepath.Join(dir, "pwned")); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.safetensors")
	if _, err := convert.Convert(zp, out, convert.Options{}); !errors.Is(err, convert.ErrRefused) {
		t.Fatalf("got %v", err)
	}
	for _, p := range []string{out, filepath.Join(dir, "pwned")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s exists", p)
		}
	}
}
