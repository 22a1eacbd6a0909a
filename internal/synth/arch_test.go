package synth_test

import (
	"encoding/json"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// The published parameter counts of Qwen/Qwen2-0.5B (494,032,768) and
// Qwen/Qwen2-7B (7,615,616,512) pin the shapes down: a wrong shape, a missing
// bias or a wrongly tied lm_head would change them.
func TestArchParamCountsMatchPublishedModels(t *testing.T) {
	for _, c := range []struct {
		a    synth.Arch
		want uint64
	}{{synth.Qwen2_0_5B, 494_032_768}, {synth.Qwen2_7B, 7_615_616_512}} {
		if got := c.a.Params(); got != c.want {
			t.Errorf("%s: %d parameters, the published model has %d", c.a.Name, got, c.want)
		}
	}
}

func TestSpecsNamesAndShapes(t *testing.T) {
	a := synth.Qwen2_7B
	specs := a.Specs(formats.BF16)
	byName := map[string][]uint64{}
	for _, s := range specs {
		if _, dup := byName[s.Name]; dup {
			t.Fatalf("duplicate tensor %q", s.Name)
		}
		if s.DType != formats.BF16 {
			t.Fatalf("%s: dtype %s", s.Name, s.DType)
		}
		byName[s.Name] = s.Shape
	}
	if want := 1 + 12*a.Layers + 1 + 1; len(specs) != want {
		t.Errorf("%d tensors, want %d", len(specs), want)
	}
	check := func(name string, shape ...uint64) {
		t.Helper()
		got, ok := byName[name]
		if !ok {
			t.Errorf("missing %s", name)
			return
		}
		if len(got) != len(shape) {
			t.Errorf("%s: shape %v, want %v", name, got, shape)
			return
		}
		for i := range got {
			if got[i] != shape[i] {
				t.Errorf("%s: shape %v, want %v", name, got, shape)
				return
			}
		}
	}
	// Shapes as transformers' Qwen2ForCausalLM prints them for Qwen2-7B.
	check("model.embed_tokens.weight", 152064, 3584)
	check("model.layers.27.self_attn.q_proj.weight", 3584, 3584)
	check("model.layers.27.self_attn.q_proj.bias", 3584)
	check("model.layers.0.self_attn.k_proj.weight", 512, 3584)
	check("model.layers.0.self_attn.k_proj.bias", 512)
	check("model.layers.0.self_attn.v_proj.weight", 512, 3584)
	check("model.layers.0.self_attn.v_proj.bias", 512)
	check("model.layers.0.self_attn.o_proj.weight", 3584, 3584)
	check("model.layers.0.mlp.gate_proj.weight", 18944, 3584)
	check("model.layers.0.mlp.up_proj.weight", 18944, 3584)
	check("model.layers.0.mlp.down_proj.weight", 3584, 18944)
	check("model.layers.0.input_layernorm.weight", 3584)
	check("model.layers.0.post_attention_layernorm.weight", 3584)
	check("model.norm.weight", 3584)
	check("lm_head.weight", 152064, 3584)
	if _, ok := byName["model.layers.28.input_layernorm.weight"]; ok {
		t.Error("a 29th layer")
	}
	for _, s := range synth.Qwen2_0_5B.Specs(formats.BF16) {
		if s.Name == "lm_head.weight" {
			t.Error("Qwen2-0.5B ties its embeddings: no lm_head.weight is saved")
		}
	}
}

func TestConfigJSONMatchesArch(t *testing.T) {
	for _, a := range synth.Archs() {
		var cfg map[string]any
		if err := json.Unmarshal(a.ConfigJSON(formats.BF16), &cfg); err != nil {
			t.Fatalf("%s: config.json is not JSON: %v", a.Name, err)
		}
		want := map[string]any{
			"vocab_size": float64(a.VocabSize), "hidden_size": float64(a.Hidden),
			"intermediate_size": float64(a.Intermediate), "num_hidden_layers": float64(a.Layers),
			"num_attention_heads": float64(a.Heads), "num_key_value_heads": float64(a.KVHeads),
			"tie_word_embeddings": a.Tie, "model_type": "qwen2", "torch_dtype": "bfloat16",
		}
		for k, v := range want {
			if cfg[k] != v {
				t.Errorf("%s: %s = %v, want %v", a.Name, k, cfg[k], v)
			}
		}
	}
}

func TestArchByName(t *testing.T) {
	for _, a := range synth.Archs() {
		got, err := synth.ArchByName(a.Name)
		if err != nil || got != a {
			t.Errorf("ArchByName(%q) = %v, %v", a.Name, got.Name, err)
		}
	}
	if _, err := synth.ArchByName("gpt-17"); err == nil {
		t.Error("an unknown name was accepted")
	}
}
