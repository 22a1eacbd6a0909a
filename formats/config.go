package formats

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
)

// ModelConfig holds the fields of a Hugging Face config.json that constrain tensor
// shapes in Llama/Qwen2-style decoder models.
type ModelConfig struct {
	Path              string
	ModelType         string `json:"model_type"`
	VocabSize         int    `json:"vocab_size"`
	HiddenSize        int    `json:"hidden_size"`
	IntermediateSize  int    `json:"intermediate_size"`
	NumHiddenLayers   int    `json:"num_hidden_layers"`
	NumAttentionHeads int    `json:"num_attention_heads"`
	NumKeyValueHeads  int    `json:"num_key_value_heads"`
	HeadDim           int    `json:"head_dim"`
	TieWordEmbeddings bool   `json:"tie_word_embeddings"`
	TorchDType        string `json:"torch_dtype"`
}

// ReadConfig parses config.json. Unknown fields are ignored.
func ReadConfig(path string) (*ModelConfig, error) {
	data, err := ReadSideFile(path, MaxConfigSize)
	if err != nil {
		return nil, sideFileFinding(err, ErrConfig)
	}
	cfg := &ModelConfig{Path: path}
	// Numbers may be written as floats by some tools; decode loosely, then check.
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, newErr(ErrConfig, path, "", -1, "config.json is not valid JSON: %v", err)
	}
	ints := map[string]*int{"vocab_size": &cfg.VocabSize, "hidden_size": &cfg.HiddenSize,
		"intermediate_size": &cfg.IntermediateSize, "num_hidden_layers": &cfg.NumHiddenLayers,
		"num_attention_heads": &cfg.NumAttentionHeads, "num_key_value_heads": &cfg.NumKeyValueHeads, "head_dim": &cfg.HeadDim}
	for k, dst := range ints {
		if v, ok := raw[k].(float64); ok && v >= 0 && v == float64(int(v)) {
			*dst = int(v)
		}
	}
	cfg.ModelType, _ = raw["model_type"].(string)
	cfg.TorchDType, _ = raw["torch_dtype"].(string)
	// transformers' save_pretrained omits a value equal to PretrainedConfig's
	// default, and that default is tie_word_embeddings=true (Gemma configs, for
	// one, rely on it): absent means tied.
	cfg.TieWordEmbeddings = true
	if v, ok := raw["tie_word_embeddings"].(bool); ok {
		cfg.TieWordEmbeddings = v
	}
	return cfg, nil
}

var layerRe = regexp.MustCompile(`^model\.layers\.(\d+)\.`)

// Check cross-checks the checkpoint's tensor shapes against the config for
// Llama/Qwen2-style decoders (tensor names under "model."). Other models and
// PEFT adapters are left alone.
func (cfg *ModelConfig) Check(c *Checkpoint) []Problem {
	if c.Layout == LayoutAdapter || c.Tensor("model.embed_tokens.weight") == nil || cfg.HiddenSize <= 0 {
		return nil
	}
	var out []Problem
	bad := func(tensor, format string, args ...any) {
		out = append(out, Problem{SevError, &Error{Kind: ErrConfig, File: cfg.Path, Tensor: tensor, Offset: -1, Detail: fmt.Sprintf(format, args...)}})
	}
	want := func(name string, shape ...int) {
		t := c.Tensor(name)
		if t == nil {
			return
		}
		if len(t.Shape) != len(shape) {
			bad(name, "shape %v, but config.json implies %v", t.Shape, shape)
			return
		}
		for i := range shape {
			if shape[i] > 0 && t.Shape[i] != uint64(shape[i]) {
				bad(name, "shape %v, but config.json implies %v", t.Shape, shape)
				return
			}
		}
	}
	want("model.embed_tokens.weight", cfg.VocabSize, cfg.HiddenSize)
	layers := map[int]bool{}
	for _, t := range c.Tensors {
		if m := layerRe.FindStringSubmatch(t.Name); m != nil {
			n, _ := strconv.Atoi(m[1])
			layers[n] = true
		}
	}
	if cfg.NumHiddenLayers > 0 && len(layers) > 0 {
		// num_hidden_layers comes from the file: count, do not enumerate, the
		// layers it implies (2^40 of them must not be a loop of 2^40).
		present := 0
		for l := range layers {
			if l < cfg.NumHiddenLayers {
				present++
			}
		}
		var missing []int // the first few
		for i := 0; i < cfg.NumHiddenLayers && len(missing) < 10; i++ {
			if !layers[i] {
				missing = append(missing, i)
			}
		}
		more := ""
		if n := cfg.NumHiddenLayers - present; n > len(missing) {
			more = fmt.Sprintf(" and %d more", n-len(missing))
		}
		if present < cfg.NumHiddenLayers || len(layers) > present {
			bad("", "config.json has num_hidden_layers=%d but the weights hold %d layers (missing: %v%s)", cfg.NumHiddenLayers, len(layers), missing, more)
		}
	}
	heads, kv := cfg.NumAttentionHeads, cfg.NumKeyValueHeads
	if kv == 0 {
		kv = heads
	}
	if heads > 0 {
		hd := cfg.HeadDim
		if hd == 0 {
			hd = cfg.HiddenSize / heads
		}
		for _, l := range sortedInts(layers) {
			p := fmt.Sprintf("model.layers.%d.self_attn.", l)
			want(p+"q_proj.weight", heads*hd, cfg.HiddenSize)
			want(p+"k_proj.weight", kv*hd, cfg.HiddenSize)
			want(p+"v_proj.weight", kv*hd, cfg.HiddenSize)
			want(p+"o_proj.weight", cfg.HiddenSize, heads*hd)
		}
	}
	if c.Tensor("lm_head.weight") == nil && !cfg.TieWordEmbeddings && len(c.AllFileErrors()) == 0 {
		bad("lm_head.weight", "missing, and config.json has tie_word_embeddings=false: the model would load an untrained output layer")
	}
	want("lm_head.weight", cfg.VocabSize, cfg.HiddenSize)
	return out
}

// AllFileErrors lists the files that break a read rule.
func (c *Checkpoint) AllFileErrors() []*File {
	var out []*File
	for _, f := range c.Files {
		if f.Err != nil {
			out = append(out, f)
		}
	}
	return out
}

func sortedInts(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}
