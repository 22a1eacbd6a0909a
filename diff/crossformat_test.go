package diff

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/formats/ggml"
	"github.com/ckpt-tool/ckpt/internal/synth"
	"github.com/x448/float16"
)

func TestGGUFName(t *testing.T) {
	for hf, want := range map[string]string{
		"model.embed_tokens.weight":                      "token_embd.weight",
		"model.norm.weight":                              "output_norm.weight",
		"lm_head.weight":                                 "output.weight",
		"model.layers.12.self_attn.q_proj.weight":        "blk.12.attn_q.weight",
		"model.layers.0.self_attn.k_proj.bias":           "blk.0.attn_k.bias",
		"model.layers.3.self_attn.o_proj.weight":         "blk.3.attn_output.weight",
		"model.layers.3.self_attn.q_norm.weight":         "blk.3.attn_q_norm.weight",
		"model.layers.7.mlp.down_proj.weight":            "blk.7.ffn_down.weight",
		"model.layers.7.input_layernorm.weight":          "blk.7.attn_norm.weight",
		"model.layers.7.post_attention_layernorm.weight": "blk.7.ffn_norm.weight",
	} {
		if got, ok := GGUFName("llama", hf); !ok || got != want {
			t.Errorf("%s → %q %v, want %q", hf, got, ok, want)
		}
	}
	if got, _ := GGUFName("gemma2", "model.layers.1.post_feedforward_layernorm.weight"); got != "blk.1.post_ffw_norm.weight" {
		t.Errorf("gemma2: %q", got)
	}
	for _, n := range []string{"model.layers.x.mlp.up_proj.weight", "model.rotary_emb.inv_freq", "model.layers.1.mlp.experts.0.weight"} {
		if g, ok := GGUFName("llama", n); ok {
			t.Errorf("%s mapped to %s", n, g)
		}
	}
}

// quantQ8_0 is ggml's quantize_row_q8_0_ref.
func quantQ8_0(x []float32) []byte {
	var out []byte
	for i := 0; i < len(x); i += 32 {
		amax := float32(0)
		for _, v := range x[i : i+32] {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		id := float32(0)
		if d != 0 {
			id = 1 / d
		}
		out = binary.LittleEndian.AppendUint16(out, float16.Fromfloat32(d).Bits())
		for _, v := range x[i : i+32] {
			out = append(out, byte(int8(math.Round(float64(v*id)))))
		}
	}
	return out
}

// quantQ4_0 is ggml's quantize_row_q4_0_ref.
func quantQ4_0(x []float32) []byte {
	var out []byte
	for i := 0; i < len(x); i += 32 {
		amax, mx := float32(0), float32(0)
		for _, v := range x[i : i+32] {
			if a := float32(math.Abs(float64(v))); amax < a {
				amax, mx = a, v
			}
		}
		d := mx / -8
		id := float32(0)
		if d != 0 {
			id = 1 / d
		}
		out = binary.LittleEndian.AppendUint16(out, float16.Fromfloat32(d).Bits())
		for j := 0; j < 16; j++ {
			x0, x1 := x[i+j]*id, x[i+16+j]*id
			xi0, xi1 := min(15, int8(x0+8.5)), min(15, int8(x1+8.5))
			out = append(out, byte(xi0)|byte(xi1)<<4)
		}
	}
	return out
}

// permuteQK is the converter's permutation of q/k rows (source → GGUF).
func permuteQK(rows [][]float32, heads int) [][]float32 {
	out := make([][]float32, len(rows))
	hr := len(rows) / heads
	for h := 0; h < heads; h++ {
		for j := 0; j < hr/2; j++ {
			for k := 0; k < 2; k++ {
				out[h*hr+2*j+k] = rows[h*hr+k*hr/2+j]
			}
		}
	}
	return out
}

// crossModel writes a tiny llama as safetensors (F32, with config.json) and
// as GGUF (q/k permuted by head, Q8_0 matrices, F32 norms); swap exchanges the
// ffn_up of layers 0 and 1 in the GGUF, modelType is config.json's.
func crossModel(t *testing.T, dir string, swap bool, modelType string) (string, string) {
	return crossModelTyped(t, dir, swap, modelType, ggml.Q8_0)
}

// crossModelTyped is crossModel with the ffn_up matrices in type up (Q8_0 or
// Q4_0).
func crossModelTyped(t *testing.T, dir string, swap bool, modelType string, upType ggml.Type) (string, string) {
	const hidden, heads, kvHeads, layers = 64, 4, 2, 2
	r := rand.New(rand.NewPCG(1, 1))
	mat := func(rows, cols int) [][]float32 {
		m := make([][]float32, rows)
		for i := range m {
			m[i] = make([]float32, cols)
			for j := range m[i] {
				m[i][j] = float32(r.NormFloat64() * 0.02)
			}
		}
		return m
	}
	flat := func(m [][]float32) []float32 {
		var out []float32
		for _, row := range m {
			out = append(out, row...)
		}
		return out
	}
	f32bytes := func(v []float32) []byte {
		var out []byte
		for _, x := range v {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(x))
		}
		return out
	}
	var st []tensor
	var gg []synth.GGUFTensor
	up := map[int][]float32{}
	for l := 0; l < layers; l++ {
		p := "model.layers." + string(rune('0'+l)) + "."
		b := "blk." + string(rune('0'+l)) + "."
		q, k, u := mat(hidden, hidden), mat(hidden/heads*kvHeads, hidden), mat(128, hidden)
		norm := make([]float32, hidden)
		for i := range norm {
			norm[i] = 1 + float32(r.NormFloat64()*0.1)
		}
		st = append(st,
			tensor{p + "self_attn.q_proj.weight", formats.F32, []uint64{hidden, hidden}, f32bytes(flat(q))},
			tensor{p + "self_attn.k_proj.weight", formats.F32, []uint64{uint64(len(k)), hidden}, f32bytes(flat(k))},
			tensor{p + "mlp.up_proj.weight", formats.F32, []uint64{128, hidden}, f32bytes(flat(u))},
			tensor{p + "input_layernorm.weight", formats.F32, []uint64{hidden}, f32bytes(norm)})
		up[l] = flat(u)
		gg = append(gg,
			synth.GGUFTensor{Name: b + "attn_q.weight", Type: ggml.Q8_0, Shape: []uint64{hidden, hidden}, Data: quantQ8_0(flat(permuteQK(q, heads)))},
			synth.GGUFTensor{Name: b + "attn_k.weight", Type: ggml.F32, Shape: []uint64{uint64(len(k)), hidden}, Data: f32bytes(flat(permuteQK(k, kvHeads)))},
			synth.GGUFTensor{Name: b + "ffn_up.weight", Type: upType, Shape: []uint64{128, hidden}},
			synth.GGUFTensor{Name: b + "attn_norm.weight", Type: ggml.F32, Shape: []uint64{hidden}, Data: f32bytes(norm)})
	}
	for l := 0; l < layers; l++ {
		src := l
		if swap {
			src = 1 - l
		}
		if upType == ggml.Q4_0 {
			gg[4*l+2].Data = quantQ4_0(up[src])
		} else {
			gg[4*l+2].Data = quantQ8_0(up[src])
		}
	}
	stDir := filepath.Join(dir, "hf")
	writeST(t, filepath.Join(stDir, "model.safetensors"), st...)
	if err := os.WriteFile(filepath.Join(stDir, "config.json"), []byte(`{"model_type":"`+modelType+`"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	g := &synth.GGUF{KV: []synth.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "llama.attention.head_count", Value: uint32(heads)},
		{Key: "llama.attention.head_count_kv", Value: uint32(kvHeads)},
	}, Tensors: gg}
	gp := filepath.Join(dir, "model-Q8_0.gguf")
	if err := os.WriteFile(gp, g.Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
	return stDir, gp
}

func compareCross(t *testing.T, a, b string) *Result {
	t.Helper()
	r, err := ComparePaths(context.Background(), a, b, Options{ChunkBytes: 2048, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestCrossFormat: a safetensors model and its GGUF conversion compare tensor
// by tensor under llama.cpp's names, the q/k permutation undone, each error
// within its type's usual cost; a swapped layer is suspect; a config.json of
// another architecture is a problem.
func TestCrossFormat(t *testing.T) {
	hf, gg := crossModel(t, t.TempDir(), false, "llama")
	for _, order := range [][2]string{{hf, gg}, {gg, hf}} {
		r := compareCross(t, order[0], order[1])
		if r.CrossFormat == nil || r.CrossFormat.Architecture != "llama" || len(r.Problems) != 0 {
			t.Fatalf("cross format %+v, problems %v", r.CrossFormat, r.Problems)
		}
		if len(r.Tensors) != 8 {
			t.Fatalf("%d tensors", len(r.Tensors))
		}
		for _, d := range r.Tensors {
			rel, _ := d.RelL2()
			if !d.Compared || d.Suspect || d.Status == OnlyA || d.Status == OnlyB {
				t.Errorf("%s: %s compared %v suspect %v rel %g (usual %g) %s", d.Name, d.Status, d.Compared, d.Suspect, rel, d.UsualError, d.Reason)
			}
			switch {
			case strings.HasSuffix(d.Name, "attn_k.weight") || strings.HasSuffix(d.Name, "norm.weight"):
				if d.Status != Identical && rel != 0 {
					t.Errorf("%s: F32 copy differs: %s rel %g", d.Name, d.Status, rel)
				}
			case rel <= 0 || rel > 0.01:
				t.Errorf("%s: Q8_0 relative error %g", d.Name, rel)
			}
		}
		if !strings.Contains(strings.Join(r.CrossFormat.Notes, "; "), "q/k row permutation undone on 4 tensors") {
			t.Errorf("notes %v", r.CrossFormat.Notes)
		}
	}

	hf, gg = crossModel(t, t.TempDir(), true, "llama")
	r := compareCross(t, hf, gg)
	for _, d := range r.Tensors {
		want := strings.HasSuffix(d.Name, "ffn_up.weight")
		if d.Suspect != want {
			rel, _ := d.RelL2()
			t.Errorf("swapped layers: %s suspect %v (rel %g, usual %g)", d.Name, d.Suspect, rel, d.UsualError)
		}
	}

	hf, gg = crossModel(t, t.TempDir(), false, "qwen2")
	r = compareCross(t, hf, gg)
	if len(r.Problems) != 1 || !strings.Contains(r.Problems[0].Err.Error(), `config.json says model_type "qwen2" but the GGUF's general.architecture is "llama"`) {
		t.Errorf("problems %v", r.Problems)
	}
}

// TestCrossFormatErrorsMatchTheirType: conversions to Q8_0 and Q4_0 (by
// ggml's reference quantizers) cost about what UsualError says, within a
// factor of three either way.
func TestCrossFormatErrorsMatchTheirType(t *testing.T) {
	for _, ty := range []ggml.Type{ggml.Q8_0, ggml.Q4_0} {
		hf, gg := crossModelTyped(t, t.TempDir(), false, "llama", ty)
		r := compareCross(t, hf, gg)
		for _, d := range r.Tensors {
			if !strings.HasSuffix(d.Name, "ffn_up.weight") {
				continue
			}
			rel, _ := d.RelL2()
			usual, _ := UsualError(formats.DType(ty.String()))
			if d.Suspect || rel < usual/3 || rel > 3*usual {
				t.Errorf("%s %s: relative error %g, usual %g", ty, d.Name, rel, usual)
			}
			t.Logf("%s %s: relative error %.4g (usual %.3g)", ty, d.Name, rel, usual)
		}
	}
}
