package formats_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
)

// tinyDecoder is a Llama/Qwen2-style decoder's shapes: vocab V, hidden H,
// heads Q and KV heads K of dimension D, L layers.
type tinyDecoder struct {
	V, H, Q, K, D, L int
	lmHead           bool
	edit             func(specs map[string][]uint64)
}

func (m tinyDecoder) specs() []formats.TensorSpec {
	shapes := map[string][]uint64{
		"model.embed_tokens.weight": {uint64(m.V), uint64(m.H)},
		"model.norm.weight":         {uint64(m.H)},
	}
	for l := 0; l < m.L; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		shapes[p+"self_attn.q_proj.weight"] = []uint64{uint64(m.Q * m.D), uint64(m.H)}
		shapes[p+"self_attn.k_proj.weight"] = []uint64{uint64(m.K * m.D), uint64(m.H)}
		shapes[p+"self_attn.v_proj.weight"] = []uint64{uint64(m.K * m.D), uint64(m.H)}
		shapes[p+"self_attn.o_proj.weight"] = []uint64{uint64(m.H), uint64(m.Q * m.D)}
		shapes[p+"input_layernorm.weight"] = []uint64{uint64(m.H)}
	}
	if m.lmHead {
		shapes["lm_head.weight"] = []uint64{uint64(m.V), uint64(m.H)}
	}
	if m.edit != nil {
		m.edit(shapes)
	}
	var out []formats.TensorSpec
	for name, shape := range shapes {
		out = append(out, formats.TensorSpec{Name: name, DType: formats.BF16, Shape: shape})
	}
	return out
}

func TestConfigCrossChecks(t *testing.T) {
	base := tinyDecoder{V: 32, H: 16, Q: 4, K: 2, D: 4, L: 2, lmHead: true}
	cfg := map[string]any{"model_type": "qwen2", "vocab_size": 32, "hidden_size": 16, "num_attention_heads": 4,
		"num_key_value_heads": 2, "num_hidden_layers": 2, "tie_word_embeddings": false, "torch_dtype": "bfloat16"}
	with := func(kv ...any) map[string]any {
		out := map[string]any{}
		for k, v := range cfg {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(out, kv[i].(string))
			} else {
				out[kv[i].(string)] = kv[i+1]
			}
		}
		return out
	}
	edited := func(f func(map[string][]uint64)) tinyDecoder { m := base; m.edit = f; return m }
	noHead := base
	noHead.lmHead = false
	cases := []struct {
		name    string
		model   tinyDecoder
		config  map[string]any
		tensors []string // tensors named by ErrConfig errors ("" for a checkpoint-wide one); nil: none
	}{
		{"healthy", base, cfg, nil},
		{"config numbers written as floats", base, with("hidden_size", 16.0, "vocab_size", 32.0), nil},
		{"head_dim given explicitly", edited(func(s map[string][]uint64) {
			for l := 0; l < 2; l++ {
				p := fmt.Sprintf("model.layers.%d.self_attn.", l)
				s[p+"q_proj.weight"] = []uint64{32, 16}
				s[p+"k_proj.weight"] = []uint64{16, 16}
				s[p+"v_proj.weight"] = []uint64{16, 16}
				s[p+"o_proj.weight"] = []uint64{16, 32}
			}
		}), with("head_dim", 8), nil},
		{"no kv heads means as many as heads", edited(func(s map[string][]uint64) {
			for l := 0; l < 2; l++ {
				p := fmt.Sprintf("model.layers.%d.self_attn.", l)
				s[p+"k_proj.weight"] = []uint64{16, 16}
				s[p+"v_proj.weight"] = []uint64{16, 16}
			}
		}), with("num_key_value_heads", nil), nil},
		{"embedding vocab differs", base, with("vocab_size", 33), []string{"model.embed_tokens.weight", "lm_head.weight"}},
		{"embedding hidden differs", edited(func(s map[string][]uint64) { s["model.embed_tokens.weight"] = []uint64{32, 8} }), cfg,
			[]string{"model.embed_tokens.weight"}},
		{"embedding rank differs", edited(func(s map[string][]uint64) { s["model.embed_tokens.weight"] = []uint64{32 * 16} }), cfg,
			[]string{"model.embed_tokens.weight"}},
		{"fewer layers than config", base, with("num_hidden_layers", 3), []string{""}},
		{"more layers than config", base, with("num_hidden_layers", 1), []string{""}},
		// From the mutation campaign: a loop over 2^40 layers hung inspect.
		{"absurd number of layers", base, with("num_hidden_layers", float64(1<<40)), []string{""}},
		{"k_proj sized for all heads", edited(func(s map[string][]uint64) { s["model.layers.1.self_attn.k_proj.weight"] = []uint64{16, 16} }), cfg,
			[]string{"model.layers.1.self_attn.k_proj.weight"}},
		{"v_proj wrong", edited(func(s map[string][]uint64) { s["model.layers.0.self_attn.v_proj.weight"] = []uint64{8, 8} }), cfg,
			[]string{"model.layers.0.self_attn.v_proj.weight"}},
		{"q_proj wrong", edited(func(s map[string][]uint64) { s["model.layers.0.self_attn.q_proj.weight"] = []uint64{8, 16} }), cfg,
			[]string{"model.layers.0.self_attn.q_proj.weight"}},
		// 2 heads of 8 and 1 kv head: q is 16x16, k/v 8x16, o must be 16x16.
		{"o_proj shaped like k_proj", edited(func(s map[string][]uint64) {
			for l := 0; l < 2; l++ {
				p := fmt.Sprintf("model.layers.%d.self_attn.", l)
				s[p+"q_proj.weight"] = []uint64{16, 16}
				s[p+"k_proj.weight"] = []uint64{8, 16}
				s[p+"v_proj.weight"] = []uint64{8, 16}
				s[p+"o_proj.weight"] = []uint64{16, 16}
			}
			s["model.layers.0.self_attn.o_proj.weight"] = []uint64{8, 16}
		}), with("num_key_value_heads", 1, "num_attention_heads", 2, "head_dim", 8), []string{"model.layers.0.self_attn.o_proj.weight"}},
		{"lm_head missing, untied", noHead, cfg, []string{"lm_head.weight"}},
		{"lm_head missing, tied", noHead, with("tie_word_embeddings", true), nil},
		{"lm_head missing, tie not stated (the default is tied)", noHead, with("tie_word_embeddings", nil), nil},
		{"lm_head wrong shape", edited(func(s map[string][]uint64) { s["lm_head.weight"] = []uint64{31, 16} }), cfg, []string{"lm_head.weight"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "model.safetensors", encode(t, c.model.specs(), nil, map[string]string{"format": "pt"}))
			cj, _ := json.Marshal(c.config)
			writeFile(t, dir, "config.json", cj)
			ck := mustOpen(t, dir)
			if ck.Config == nil || ck.Config.HiddenSize != 16 {
				t.Fatalf("config not read: %+v", ck.Config)
			}
			var got []string
			for _, p := range ck.AllProblems() {
				if !errors.Is(p.Err, formats.ErrConfig) || p.Severity != formats.SevError {
					t.Errorf("unexpected problem %v", p.Err)
					continue
				}
				got = append(got, p.Err.Tensor)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.tensors) && !(len(got) == 0 && len(c.tensors) == 0) {
				t.Errorf("config errors on %q, want %q", got, c.tensors)
			}
		})
	}
}

func TestConfigUnreadable(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "model.safetensors", encode(t, tinyDecoder{V: 4, H: 4, Q: 1, K: 1, D: 4, L: 1, lmHead: true}.specs(), nil, nil))
	writeFile(t, dir, "config.json", []byte(`{"hidden_size": 4,`))
	ck := mustOpen(t, dir)
	p := findProblem(ck.AllProblems(), formats.ErrConfig)
	if p == nil || p.Severity != formats.SevWarning || ck.Config != nil {
		t.Fatalf("problems %v, config %v", ck.AllProblems(), ck.Config)
	}
	if _, err := formats.ReadConfig(dir + "/config.json"); !errors.Is(err, formats.ErrConfig) {
		t.Errorf("ReadConfig: %v", err)
	}
	// Models that are not Llama-style decoders are left alone.
	dir = t.TempDir()
	writeFile(t, dir, "model.safetensors", encode(t, []formats.TensorSpec{{Name: "bert.embeddings.word_embeddings.weight", DType: formats.F32, Shape: []uint64{3, 4}}}, nil, nil))
	writeFile(t, dir, "config.json", []byte(`{"hidden_size": 768, "vocab_size": 30522, "num_hidden_layers": 12, "tie_word_embeddings": false}`))
	if ps := mustOpen(t, dir).AllProblems(); len(ps) != 0 {
		t.Errorf("non-decoder: %v", ps)
	}
}
