package diff

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/formats/ggml"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// TestCompareGGUF compares two GGUF files tensor by tensor (block types
// chunked by whole blocks, dequantized as ggml does) and holds the result to
// ReferenceCompare; small chunks force many tasks per tensor. A grid IQ
// tensor, whose values are not decoded, is unreadable with a reason.
func TestCompareGGUF(t *testing.T) {
	dir := t.TempDir()
	qa := synth.QuantBlocks(ggml.Q4_K, 40, 1)
	qb := append([]byte(nil), qa...)
	for i := 0; i < len(qb); i += 97 {
		qb[i] ^= 0x11 // change quants and scales here and there
	}
	synth.SetBlockScale(ggml.Q4_K, qb, 7, 0x7e00)
	q8a, q8b := synth.QuantBlocks(ggml.Q8_0, 64, 2), synth.QuantBlocks(ggml.Q8_0, 64, 3)
	iq := synth.QuantBlocks(ggml.IQ2_XS, 1, 4)
	write := func(name string, q4, q8 []byte) string {
		g := &synth.GGUF{Tensors: []synth.GGUFTensor{
			{Name: "blk.0.attn_q.weight", Type: ggml.Q4_K, Shape: []uint64{40, 256}, Data: q4},
			{Name: "blk.0.ffn_up.weight", Type: ggml.Q8_0, Shape: []uint64{32, 64}, Data: q8},
			{Name: "blk.0.ffn_down.weight", Type: ggml.IQ2_XS, Shape: []uint64{1, 256}, Data: iq},
		}}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, g.Encode(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pa, pb := write("a.gguf", qa, q8a), write("b.gguf", qb, q8b)
	ca, err := formats.Open(pa)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := formats.Open(pb)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Compare(context.Background(), ca, cb, Options{ChunkBytes: 1000, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Stats{
		"blk.0.attn_q.weight": ReferenceCompare("Q4_K", qa, "Q4_K", qb),
		"blk.0.ffn_up.weight": ReferenceCompare("Q8_0", q8a, "Q8_0", q8b),
	}
	for _, d := range r.Tensors {
		if d.Name == "blk.0.ffn_down.weight" {
			if d.Status != Unreadable || d.Reason == "" {
				t.Errorf("IQ2_XS: %+v", d)
			}
			continue
		}
		if d.Status != Changed || !statsClose(d.Stats, want[d.Name], 1e-12) {
			t.Errorf("%s: %s %+v, want %+v", d.Name, d.Status, d.Stats, want[d.Name])
		}
	}
	if s := want["blk.0.attn_q.weight"]; s.NonFiniteB != 256 {
		t.Errorf("reference: %d non-finite in B, want 256", s.NonFiniteB)
	}
}
