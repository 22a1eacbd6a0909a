package probe

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// overflowModel writes synth.OverflowingDecoder in bf16 and checks that its
// weights are within the float16 range.
func overflowModel(t *testing.T) string {
	t.Helper()
	d, w := synth.OverflowingDecoder()
	for name, v := range w.Values {
		for _, x := range v {
			if math.Abs(x) > 60000 {
				t.Fatalf("%s: a weight leaves the float16 range", name)
			}
		}
	}
	dir := t.TempDir()
	if err := synth.WriteDecoder(dir, d, formats.BF16, w); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestF16OverflowNamesLayer2MLP: served in f16 the probe names layer 2's MLP
// as the first non-finite place and the distributions are invalid; in bf16 and
// f32 the same weights give valid distributions.
func TestF16OverflowNamesLayer2MLP(t *testing.T) {
	dir := overflowModel(t)
	r, err := Run(dir, Options{DType: formats.F16})
	if err != nil {
		t.Fatal(err)
	}
	f := r.FirstNonFinite
	if f == nil || f.Layer != 2 || f.Where != WhereMLP {
		t.Fatalf("first non-finite place %+v, want layer 2 mlp", f)
	}
	if math.IsNaN(f.LastFiniteAbsmax) || f.LastFiniteAbsmax > 65504 {
		t.Errorf("last finite absmax %g", f.LastFiniteAbsmax)
	}
	if !(f.UnroundedAbsmax > 65504) || math.IsInf(f.UnroundedAbsmax, 0) {
		t.Errorf("unrounded absmax %g: the float32 value before rounding should be finite and past 65504", f.UnroundedAbsmax)
	}
	if r.Healthy || r.LogitsFinite {
		t.Errorf("f16 probe is healthy: %+v", r.Findings)
	}
	for _, p := range r.Positions {
		if p.Valid {
			t.Errorf("position %d valid in f16", p.Position)
		}
	}
	for i, l := range r.Layers {
		if (i < 2) != (l.NonFinite == 0) {
			t.Errorf("layer %d: %d non-finite values", i, l.NonFinite)
		}
	}
	if len(r.Findings) == 0 || r.Findings[0].Check != CheckProbe || !strings.Contains(r.Findings[0].Message+r.Findings[1].Message, "layer 2 mlp") {
		t.Errorf("findings: %+v", r.Findings)
	}
	for _, dt := range []formats.DType{formats.BF16, formats.F32} {
		r, err := Run(dir, Options{DType: dt})
		if err != nil {
			t.Fatal(err)
		}
		if !r.Healthy || r.FirstNonFinite != nil || !r.LogitsFinite {
			t.Errorf("%s: unhealthy: %+v %+v", dt, r.FirstNonFinite, r.Findings)
		}
		if r.Layers[2].MLPAbsmax <= 65504 {
			t.Errorf("%s: layer 2 MLP absmax %g does not exceed the float16 range; the test model is too tame", dt, r.Layers[2].MLPAbsmax)
		}
		for _, p := range r.Positions {
			if !p.Valid || len(p.Top) != TopK {
				t.Errorf("%s: position %+v", dt, p)
			}
		}
	}
	// Default dtype: the config's torch_dtype (bfloat16).
	if r, err := Run(dir, Options{}); err != nil || r.DType != formats.BF16 {
		t.Fatalf("default dtype: %v %v", r, err)
	}
}

// TestNearOverflowWarns: an activation within 2× of the dtype's largest
// finite value is a warning, not an error.
func TestNearOverflowWarns(t *testing.T) {
	d := synth.Decoder{Family: "llama", Vocab: 300, Hidden: 64, Intermediate: 172, Layers: 4, Heads: 4, KVHeads: 2}
	w := d.Weights(7)
	dir := t.TempDir()
	if err := synth.WriteDecoder(dir, d, formats.F32, w); err != nil {
		t.Fatal(err)
	}
	r, err := Run(dir, Options{DType: formats.F32})
	if err != nil {
		t.Fatal(err)
	}
	// Scale layer 1's down_proj so that its MLP output lands at ~45000.
	scale := 45000 / r.Layers[1].MLPAbsmax
	for i := range w.Values["model.layers.1.mlp.down_proj.weight"] {
		w.Values["model.layers.1.mlp.down_proj.weight"][i] *= scale
	}
	if err := synth.WriteDecoder(dir, d, formats.F32, w); err != nil {
		t.Fatal(err)
	}
	r, err = Run(dir, Options{DType: formats.F16})
	if err != nil {
		t.Fatal(err)
	}
	var warned bool
	for _, f := range r.Findings {
		warned = warned || (f.Severity == "warning" && f.Tensor == "model.layers.1.mlp")
	}
	if !warned || !r.Healthy {
		t.Fatalf("healthy %v, findings %+v", r.Healthy, r.Findings)
	}
}

// TestNaNWeightsInvalidAtFirstLayerReadingThem: NaN in layer 1's weights
// makes layer 1 the first non-finite place, in every dtype.
func TestNaNWeightsInvalidAtFirstLayerReadingThem(t *testing.T) {
	d := synth.Decoder{Family: "qwen2", Vocab: 300, Hidden: 64, Intermediate: 172, Layers: 3, Heads: 4, KVHeads: 2, Bias: true}
	for _, c := range []struct{ tensor, where string }{
		{"model.layers.1.mlp.up_proj.weight", WhereMLP},
		{"model.layers.1.self_attn.k_proj.bias", WhereAttention},
		{"model.layers.1.post_attention_layernorm.weight", WhereNorm},
	} {
		w := d.Weights(3)
		w.Values[c.tensor][5] = math.NaN()
		dir := t.TempDir()
		if err := synth.WriteDecoder(dir, d, formats.BF16, w); err != nil {
			t.Fatal(err)
		}
		for _, dt := range servingDTypes {
			r, err := Run(dir, Options{DType: dt})
			if err != nil {
				t.Fatal(err)
			}
			if f := r.FirstNonFinite; f == nil || f.Layer != 1 || f.Where != c.where {
				t.Errorf("%s in %s: first non-finite %+v, want layer 1 %s", c.tensor, dt, f, c.where)
			}
			if r.Healthy || r.Positions[len(r.Positions)-1].Valid {
				t.Errorf("%s in %s: healthy", c.tensor, dt)
			}
		}
	}
}

// TestStreamingInSmallBlocksGivesSameLogits: matrices read a few rows at a
// time (the path a 7B model takes) give bit-identical logits.
func TestStreamingInSmallBlocksGivesSameLogits(t *testing.T) {
	d := families[4]
	dir := t.TempDir()
	if err := synth.WriteDecoder(dir, d, formats.BF16, d.Weights(9)); err != nil {
		t.Fatal(err)
	}
	tokens := []int{5, 6, 7}
	whole := logitsOf(t, dir, tokens, formats.F16)
	defer func(n int) { chunkBytes = n }(chunkBytes)
	chunkBytes = 3 * 4 * d.Hidden // three rows of hidden-wide matrices per block
	for _, workers := range []int{1, 3} {
		ck, _ := formats.Open(dir)
		cfg, _ := ReadConfig(filepath.Join(dir, "config.json"))
		lg, _, err := Logits(ck, cfg, formats.F16, tokens, workers)
		if err != nil {
			t.Fatal(err)
		}
		for p := range whole {
			for v := range whole[p] {
				if a, b := whole[p][v], float64(lg[p*d.Vocab+v]); a != b {
					t.Fatalf("workers %d: logit (%d,%d) %g, in one block %g", workers, p, v, b, a)
				}
			}
		}
	}
}

// TestRefusals: unsupported architectures and rope types, bad tokens and
// unreadable checkpoints are errors naming what is wrong.
func TestRefusals(t *testing.T) {
	d := families[0]
	dir := t.TempDir()
	if err := synth.WriteDecoder(dir, d, formats.BF16, d.Weights(1)); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.json")
	good, _ := os.ReadFile(cfgPath)
	for _, c := range []struct{ config, want string }{
		{`{"model_type": "gpt2"}`, "architecture gpt2 is not supported by probe (supported: llama, mistral, qwen2, qwen3, gemma)"},
		{`{"model_type": "gemma2", "hidden_size": 8}`, "architecture gemma2 is not supported by probe"},
		{strings.Replace(string(good), `"model_type"`, `"rope_scaling": {"rope_type": "yarn", "factor": 4}, "model_type"`, 1), `rope_scaling type "yarn"`},
		{strings.Replace(string(good), `"num_key_value_heads": 2`, `"num_key_value_heads": 3`, 1), "not a multiple"},
		{`{`, "not valid JSON"},
	} {
		if err := os.WriteFile(cfgPath, []byte(c.config), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Run(dir, Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config %.60s: error %v, want %q", c.config, err, c.want)
		}
		var ue *UnsupportedError
		if (strings.Contains(c.want, "supported") || strings.Contains(c.want, "rope")) != errors.As(err, &ue) {
			t.Errorf("config %.60s: error %v is not an UnsupportedError", c.config, err)
		}
	}
	os.WriteFile(cfgPath, good, 0o644)
	if _, err := Run(dir, Options{Tokens: []int{1, 300}}); err == nil || !strings.Contains(err.Error(), "token id 300") {
		t.Errorf("token out of range: %v", err)
	}
	os.Remove(cfgPath)
	if _, err := Run(dir, Options{}); err == nil || !strings.Contains(err.Error(), "no config.json") {
		t.Errorf("no config: %v", err)
	}
}

// FuzzParseConfig: any config.json is parsed or refused without a panic; a
// parsed one describes a well-formed model and its rotary frequencies are
// computed.
func FuzzParseConfig(f *testing.F) {
	for _, d := range families {
		f.Add(d.ConfigJSON(formats.BF16))
	}
	f.Add([]byte(`{"model_type":"llama","vocab_size":1,"hidden_size":2,"intermediate_size":1,"num_hidden_layers":1,"num_attention_heads":1,"rope_scaling":{"type":"llama3","factor":1e308,"low_freq_factor":1e-308,"high_freq_factor":1,"original_max_position_embeddings":1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig("config.json", data)
		if err != nil {
			return
		}
		if c.Hidden <= 0 || c.Heads <= 0 || c.KVHeads <= 0 || c.Heads%c.KVHeads != 0 || c.HeadDim <= 0 || c.HeadDim%2 != 0 {
			t.Fatalf("accepted a malformed model: %+v", c)
		}
		if c.HeadDim <= 1<<16 {
			c.invFreq()
		}
	})
}

// TestProgressCountsEveryByteRead: the progress callback ends at the total it
// announced (the tied embedding read as the output layer, a few rows of it as
// the input).
func TestProgressCountsEveryByteRead(t *testing.T) {
	for _, d := range []synth.Decoder{families[0], families[4]} { // untied, tied
		dir := t.TempDir()
		if err := synth.WriteDecoder(dir, d, formats.BF16, d.Weights(1)); err != nil {
			t.Fatal(err)
		}
		var last, total int64
		if _, err := Run(dir, Options{Tokens: []int{1, 2}, Progress: func(done, tot int64) { last, total = done, tot }}); err != nil {
			t.Fatal(err)
		}
		var want int64
		w := d.Weights(1)
		for _, n := range w.Names {
			if n != "model.embed_tokens.weight" || d.Tie {
				want += int64(len(w.Values[n]) * 2)
			}
		}
		want += int64(2 * d.Hidden * 2) // two embedding rows of BF16
		if last != want || total != want {
			t.Errorf("%s tie=%v: progress ends at %d of %d, want %d", d.Family, d.Tie, last, total, want)
		}
	}
}
