package probe

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/ckpt-tool/ckpt/formats"
)

// Supported lists the config.json model_type values probe runs.
var Supported = []string{"llama", "mistral", "qwen2", "qwen3", "gemma"}

// UnsupportedError is an architecture probe does not run.
type UnsupportedError struct{ Arch, Why string }

func (e *UnsupportedError) Error() string {
	if e.Why != "" {
		return fmt.Sprintf("architecture %s is not supported by probe: %s (supported: %s)", e.Arch, e.Why, strings.Join(Supported, ", "))
	}
	return fmt.Sprintf("architecture %s is not supported by probe (supported: %s)", e.Arch, strings.Join(Supported, ", "))
}

// Config is what the forward pass needs from config.json.
type Config struct {
	Path          string
	Arch          string // model_type
	Vocab         int
	Hidden        int
	Intermediate  int
	Layers        int
	Heads         int
	KVHeads       int
	HeadDim       int
	Eps           float64 // rms_norm_eps
	RopeTheta     float64
	Rope          ropeScaling
	TorchDType    string
	Tie           bool
	Act           string // "silu", "gelu_tanh" or "gelu"
	SlidingWindow int    // 0: none
	WindowFrom    int    // the first layer the sliding window applies to (Qwen2: max_window_layers)
	GemmaNorm     bool   // RMSNorm multiplies by 1+weight, all in float32
	ScaleEmbed    bool   // embeddings multiplied by √hidden (Gemma)
	QKNorm        bool   // RMSNorm over head_dim on q and k (Qwen3)
}

// ropeScaling is a parsed rope_scaling entry.
type ropeScaling struct {
	Type                          string // "", "linear" or "llama3"
	Factor                        float64
	LowFreqFactor, HighFreqFactor float64
	OriginalMax                   float64
}

// ReadConfig reads and checks config.json at path.
func ReadConfig(path string) (*Config, error) {
	data, err := formats.ReadSideFile(path, 16<<20)
	if err != nil {
		return nil, err
	}
	return ParseConfig(path, data)
}

// ParseConfig parses the text of a config.json.
func ParseConfig(path string, data []byte) (*Config, error) {
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: not valid JSON: %v", path, err)
	}
	c := &Config{Path: path}
	c.Arch, _ = raw["model_type"].(string)
	supported := false
	for _, s := range Supported {
		supported = supported || s == c.Arch
	}
	if !supported {
		arch := c.Arch
		if arch == "" {
			arch = "(config.json has no model_type)"
		}
		return nil, &UnsupportedError{Arch: arch}
	}
	var bad []string
	num := func(key string, def float64) float64 {
		v, ok := raw[key]
		if !ok || v == nil {
			return def
		}
		x, ok := v.(float64)
		if !ok {
			bad = append(bad, fmt.Sprintf("%s is %v, not a number", key, v))
			return def
		}
		return x
	}
	integer := func(key string, def int, required bool) int {
		if _, ok := raw[key]; !ok || raw[key] == nil {
			if required {
				bad = append(bad, key+" is missing")
			}
			return def
		}
		x := num(key, float64(def))
		if x != math.Trunc(x) || x < 0 || x > 1<<31 {
			bad = append(bad, fmt.Sprintf("%s is %v, not a size", key, x))
			return def
		}
		return int(x)
	}
	c.Vocab = integer("vocab_size", 0, true)
	c.Hidden = integer("hidden_size", 0, true)
	c.Intermediate = integer("intermediate_size", 0, true)
	c.Layers = integer("num_hidden_layers", 0, true)
	c.Heads = integer("num_attention_heads", 0, true)
	c.KVHeads = integer("num_key_value_heads", c.Heads, false)
	c.HeadDim = integer("head_dim", 0, false)
	if c.HeadDim == 0 && c.Heads > 0 {
		c.HeadDim = c.Hidden / c.Heads
	}
	c.Eps = num("rms_norm_eps", 1e-6)
	c.RopeTheta = num("rope_theta", 10000)
	c.TorchDType, _ = raw["torch_dtype"].(string)
	if c.TorchDType == "" {
		c.TorchDType, _ = raw["dtype"].(string)
	}
	c.Tie = true // transformers omits the PretrainedConfig default (true)
	if v, ok := raw["tie_word_embeddings"].(bool); ok {
		c.Tie = v
	}
	// Sliding windows: Mistral's applies to every layer when set; Qwen2's and
	// Qwen3's only with use_sliding_window, to the layers from
	// max_window_layers on (transformers' default layer_types).
	switch {
	case c.Arch == "mistral":
		c.SlidingWindow = integer("sliding_window", 0, false)
	case (c.Arch == "qwen2" || c.Arch == "qwen3") && raw["use_sliding_window"] == true:
		c.SlidingWindow = integer("sliding_window", 0, false)
		c.WindowFrom = integer("max_window_layers", 0, false)
	}
	c.QKNorm = c.Arch == "qwen3"
	c.GemmaNorm = c.Arch == "gemma"
	c.ScaleEmbed = c.Arch == "gemma"

	act, _ := raw["hidden_act"].(string)
	if c.Arch == "gemma" {
		// GemmaMLP uses hidden_activation, gelu_pytorch_tanh when unset.
		act, _ = raw["hidden_activation"].(string)
		if act == "" {
			act = "gelu_pytorch_tanh"
		}
	}
	switch act {
	case "", "silu", "swish":
		c.Act = "silu"
	case "gelu_pytorch_tanh", "gelu_new", "gelu_fast":
		c.Act = "gelu_tanh"
	case "gelu":
		c.Act = "gelu"
	default:
		return nil, &UnsupportedError{Arch: c.Arch, Why: fmt.Sprintf("activation %q", act)}
	}
	if err := c.parseRope(raw["rope_scaling"]); err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s: %s", path, strings.Join(bad, "; "))
	}
	switch {
	case c.Vocab <= 0 || c.Hidden <= 0 || c.Intermediate <= 0 || c.Layers <= 0 || c.Heads <= 0 || c.KVHeads <= 0 || c.HeadDim <= 0:
		return nil, fmt.Errorf("%s: every size must be positive (vocab_size %d, hidden_size %d, intermediate_size %d, num_hidden_layers %d, num_attention_heads %d, num_key_value_heads %d, head_dim %d)",
			path, c.Vocab, c.Hidden, c.Intermediate, c.Layers, c.Heads, c.KVHeads, c.HeadDim)
	case c.Heads%c.KVHeads != 0:
		return nil, fmt.Errorf("%s: %d attention heads are not a multiple of %d key/value heads", path, c.Heads, c.KVHeads)
	case c.HeadDim%2 != 0:
		return nil, fmt.Errorf("%s: head_dim %d is odd; rotary embeddings need an even head dimension", path, c.HeadDim)
	case !(c.Eps >= 0) || !(c.RopeTheta > 0) || math.IsInf(c.RopeTheta, 0):
		return nil, fmt.Errorf("%s: rms_norm_eps %v or rope_theta %v is out of range", path, c.Eps, c.RopeTheta)
	}
	return c, nil
}

// parseRope reads rope_scaling: none, "default", "linear" and "llama3" are run;
// anything else is refused rather than approximated.
func (c *Config) parseRope(v any) error {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: rope_scaling is %v, not an object", c.Path, v)
	}
	typ, _ := m["rope_type"].(string)
	if typ == "" {
		typ, _ = m["type"].(string)
	}
	f := func(k string) float64 { x, _ := m[k].(float64); return x }
	switch typ {
	case "", "default":
		return nil
	case "linear":
		c.Rope = ropeScaling{Type: typ, Factor: f("factor")}
		if !(c.Rope.Factor > 0) {
			return fmt.Errorf("%s: rope_scaling linear needs a positive factor", c.Path)
		}
	case "llama3":
		c.Rope = ropeScaling{Type: typ, Factor: f("factor"), LowFreqFactor: f("low_freq_factor"),
			HighFreqFactor: f("high_freq_factor"), OriginalMax: f("original_max_position_embeddings")}
		r := c.Rope
		if !(r.Factor > 0 && r.LowFreqFactor > 0 && r.HighFreqFactor > r.LowFreqFactor && r.OriginalMax > 0) {
			return fmt.Errorf("%s: rope_scaling llama3 needs factor, low_freq_factor < high_freq_factor and original_max_position_embeddings", c.Path)
		}
	default:
		return &UnsupportedError{Arch: c.Arch, Why: fmt.Sprintf("rope_scaling type %q (probe runs none, linear and llama3)", typ)}
	}
	return nil
}

// invFreq returns the rotary inverse frequencies as Hugging Face computes them
// in float32: 1/θ^(2i/d), then the rope_scaling adjustment.
func (c *Config) invFreq() []float32 {
	d := c.HeadDim
	out := make([]float32, d/2)
	for i := range out {
		e := float32(2*i) / float32(d)
		out[i] = 1 / float32(math.Pow(c.RopeTheta, float64(e)))
	}
	r := c.Rope
	switch r.Type {
	case "linear":
		for i := range out {
			out[i] = float32(float64(out[i]) / r.Factor)
		}
	case "llama3":
		lowWave := r.OriginalMax / r.LowFreqFactor
		highWave := r.OriginalMax / r.HighFreqFactor
		for i, f := range out {
			wave := 2 * math.Pi / float64(f)
			v := float64(f)
			switch {
			case wave > lowWave:
				v /= r.Factor
			case wave >= highWave: // medium: interpolate between scaled and unscaled
				s := (r.OriginalMax/wave - r.LowFreqFactor) / (r.HighFreqFactor - r.LowFreqFactor)
				v = (1-s)*v/r.Factor + s*v
			}
			out[i] = float32(v)
		}
	}
	return out
}
