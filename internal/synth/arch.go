package synth

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/ckpt-tool/ckpt/formats"
)

// Arch is a Qwen2-style decoder architecture: the numbers of its config.json.
type Arch struct {
	Name         string
	VocabSize    int
	Hidden       int
	Intermediate int
	Layers       int
	Heads        int
	KVHeads      int
	Tie          bool // tie_word_embeddings: no lm_head.weight is saved
}

// The named architectures. Qwen2_0_5B and Qwen2_7B follow the published
// config.json of Qwen/Qwen2-0.5B and Qwen/Qwen2-7B. Tiny has the same structure
// (grouped key/value heads, q/k/v biases, untied lm_head) at a size whose BF16
// checkpoint is 27 KB, small enough to commit as an example.
var (
	Tiny       = Arch{Name: "tiny", VocabSize: 128, Hidden: 16, Intermediate: 32, Layers: 4, Heads: 4, KVHeads: 2}
	Qwen2_0_5B = Arch{Name: "qwen2-0.5b", VocabSize: 151936, Hidden: 896, Intermediate: 4864, Layers: 24, Heads: 14, KVHeads: 2, Tie: true}
	Qwen2_7B   = Arch{Name: "qwen2-7b", VocabSize: 152064, Hidden: 3584, Intermediate: 18944, Layers: 28, Heads: 28, KVHeads: 4}
)

// Archs lists the named architectures.
func Archs() []Arch { return []Arch{Tiny, Qwen2_0_5B, Qwen2_7B} }

// ArchByName finds a named architecture ("tiny", "qwen2-0.5b", "qwen2-7b").
func ArchByName(name string) (Arch, error) {
	var names []string
	for _, a := range Archs() {
		if strings.EqualFold(a.Name, name) {
			return a, nil
		}
		names = append(names, a.Name)
	}
	return Arch{}, fmt.Errorf("unknown architecture %q (known: %s)", name, strings.Join(names, ", "))
}

// Validate checks that the numbers make a well-formed model.
func (a Arch) Validate() error {
	if a.VocabSize <= 0 || a.Hidden <= 0 || a.Intermediate <= 0 || a.Layers <= 0 || a.Heads <= 0 || a.KVHeads <= 0 {
		return fmt.Errorf("architecture %q: every size must be positive", a.Name)
	}
	if a.Hidden%a.Heads != 0 {
		return fmt.Errorf("architecture %q: hidden size %d is not a multiple of %d heads", a.Name, a.Hidden, a.Heads)
	}
	if a.Heads%a.KVHeads != 0 {
		return fmt.Errorf("architecture %q: %d heads are not a multiple of %d key/value heads", a.Name, a.Heads, a.KVHeads)
	}
	return nil
}

// HeadDim is hidden / heads.
func (a Arch) HeadDim() int { return a.Hidden / a.Heads }

// Specs lists the model's tensors in the order a PyTorch state dict holds them
// (embedding, then each layer, final norm, lm_head unless tied), with the
// Hugging Face names and shapes; Qwen2 has biases on q, k and v.
func (a Arch) Specs(dt formats.DType) []formats.TensorSpec {
	h, kv := uint64(a.Hidden), uint64(a.KVHeads*a.HeadDim())
	inter, vocab := uint64(a.Intermediate), uint64(a.VocabSize)
	var out []formats.TensorSpec
	add := func(name string, shape ...uint64) {
		out = append(out, formats.TensorSpec{Name: name, DType: dt, Shape: shape})
	}
	add("model.embed_tokens.weight", vocab, h)
	for l := 0; l < a.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		add(p+"self_attn.q_proj.weight", h, h)
		add(p+"self_attn.q_proj.bias", h)
		add(p+"self_attn.k_proj.weight", kv, h)
		add(p+"self_attn.k_proj.bias", kv)
		add(p+"self_attn.v_proj.weight", kv, h)
		add(p+"self_attn.v_proj.bias", kv)
		add(p+"self_attn.o_proj.weight", h, h)
		add(p+"mlp.gate_proj.weight", inter, h)
		add(p+"mlp.up_proj.weight", inter, h)
		add(p+"mlp.down_proj.weight", h, inter)
		add(p+"input_layernorm.weight", h)
		add(p+"post_attention_layernorm.weight", h)
	}
	add("model.norm.weight", h)
	if !a.Tie {
		add("lm_head.weight", vocab, h)
	}
	return out
}

// Params is the number of parameters saved (tied embeddings counted once).
func (a Arch) Params() uint64 {
	var n uint64
	for _, s := range a.Specs(formats.BF16) {
		m := uint64(1)
		for _, d := range s.Shape {
			m *= d
		}
		n += m
	}
	return n
}

// TorchDType is the config.json spelling of a dtype ("bfloat16", ...).
func TorchDType(dt formats.DType) string {
	switch dt {
	case formats.BF16:
		return "bfloat16"
	case formats.F16:
		return "float16"
	case formats.F32:
		return "float32"
	case formats.F64:
		return "float64"
	case formats.F8_E4M3:
		return "float8_e4m3fn"
	case formats.F8_E5M2:
		return "float8_e5m2"
	case formats.F8_E4M3FNUZ:
		return "float8_e4m3fnuz"
	case formats.F8_E5M2FNUZ:
		return "float8_e5m2fnuz"
	}
	return strings.ToLower(string(dt))
}

// ConfigJSON is a Qwen2-style config.json, keys sorted and indented as
// transformers writes them.
func (a Arch) ConfigJSON(dt formats.DType) []byte {
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	cfg := map[string]any{
		"architectures":           []string{"Qwen2ForCausalLM"},
		"attention_dropout":       raw("0.0"),
		"bos_token_id":            151643,
		"eos_token_id":            151643,
		"hidden_act":              "silu",
		"hidden_size":             a.Hidden,
		"initializer_range":       raw("0.02"),
		"intermediate_size":       a.Intermediate,
		"max_position_embeddings": 32768,
		"max_window_layers":       a.Layers,
		"model_type":              "qwen2",
		"num_attention_heads":     a.Heads,
		"num_hidden_layers":       a.Layers,
		"num_key_value_heads":     a.KVHeads,
		"rms_norm_eps":            raw("1e-06"),
		"rope_theta":              raw("1000000.0"),
		"sliding_window":          32768,
		"tie_word_embeddings":     a.Tie,
		"torch_dtype":             TorchDType(dt),
		"transformers_version":    "4.40.1",
		"use_cache":               true,
		"use_sliding_window":      false,
		"vocab_size":              a.VocabSize,
	}
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		panic(err) // only fixed, valid values above
	}
	return append(out, '\n')
}

// sortedNames returns the keys of m, sorted.
func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
