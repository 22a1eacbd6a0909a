package synth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/ckpt-tool/ckpt/formats"
)

// Decoder is a small decoder-only language model of one of the families ckpt
// probe runs (llama, mistral, qwen2, qwen3, gemma), for forward-pass tests:
// its config.json and its weights with deterministic values.
type Decoder struct {
	Family       string // config.json model_type
	Vocab        int
	Hidden       int
	Intermediate int
	Layers       int
	Heads        int
	KVHeads      int
	HeadDim      int  // 0: Hidden/Heads
	Tie          bool // tie_word_embeddings: no lm_head.weight
	Bias         bool // q/k/v biases (Qwen2 has them)
	// Config holds more config.json entries (rope_scaling, sliding_window, ...),
	// added to or replacing the generated ones.
	Config map[string]any
}

// DecoderWeights are a Decoder's tensors, by name, in float64.
type DecoderWeights struct {
	Names  []string // state-dict order
	Shapes map[string][]uint64
	Values map[string][]float64
}

func (d Decoder) headDim() int {
	if d.HeadDim > 0 {
		return d.HeadDim
	}
	return d.Hidden / d.Heads
}

// ConfigJSON is the model's config.json.
func (d Decoder) ConfigJSON(dt formats.DType) []byte {
	cfg := map[string]any{
		"model_type": d.Family, "vocab_size": d.Vocab, "hidden_size": d.Hidden,
		"intermediate_size": d.Intermediate, "num_hidden_layers": d.Layers,
		"num_attention_heads": d.Heads, "num_key_value_heads": d.KVHeads, "head_dim": d.headDim(),
		"rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": d.Tie,
		"torch_dtype": TorchDType(dt), "hidden_act": "silu", "max_position_embeddings": 4096,
	}
	if d.Family == "gemma" {
		cfg["hidden_activation"] = "gelu_pytorch_tanh"
		cfg["hidden_act"] = "gelu_pytorch_tanh"
	}
	for k, v := range d.Config {
		cfg[k] = v
	}
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(out, '\n')
}

// Weights draws the model's tensors from seed: matrices normal with standard
// deviation 1/√fan-in (so activations stay of order one through the layers),
// norms near one (Gemma's near zero: it multiplies by 1+weight), biases small.
func (d Decoder) Weights(seed int64) *DecoderWeights {
	w := &DecoderWeights{Shapes: map[string][]uint64{}, Values: map[string][]float64{}}
	h, hd := uint64(d.Hidden), uint64(d.headDim())
	q, kv := uint64(d.Heads)*hd, uint64(d.KVHeads)*hd
	inter, vocab := uint64(d.Intermediate), uint64(d.Vocab)
	normMean := 1.0
	if d.Family == "gemma" {
		normMean = 0
	}
	add := func(name string, mean, std float64, shape ...uint64) {
		n := uint64(1)
		for _, s := range shape {
			n *= s
		}
		v := make([]float64, n)
		fillNormal(v, streamSeed(seed, name, 0, 0), mean, std)
		w.Names = append(w.Names, name)
		w.Shapes[name] = shape
		w.Values[name] = v
	}
	add("model.embed_tokens.weight", 0, 1, vocab, h)
	for l := 0; l < d.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		add(p+"input_layernorm.weight", normMean, 0.1, h)
		add(p+"self_attn.q_proj.weight", 0, 1/math.Sqrt(float64(h)), q, h)
		add(p+"self_attn.k_proj.weight", 0, 1/math.Sqrt(float64(h)), kv, h)
		add(p+"self_attn.v_proj.weight", 0, 1/math.Sqrt(float64(h)), kv, h)
		if d.Bias {
			add(p+"self_attn.q_proj.bias", 0, 0.1, q)
			add(p+"self_attn.k_proj.bias", 0, 0.1, kv)
			add(p+"self_attn.v_proj.bias", 0, 0.1, kv)
		}
		if d.Family == "qwen3" {
			add(p+"self_attn.q_norm.weight", 1, 0.1, hd)
			add(p+"self_attn.k_norm.weight", 1, 0.1, hd)
		}
		add(p+"self_attn.o_proj.weight", 0, 1/math.Sqrt(float64(q)), h, q)
		add(p+"post_attention_layernorm.weight", normMean, 0.1, h)
		add(p+"mlp.gate_proj.weight", 0, 1/math.Sqrt(float64(h)), inter, h)
		add(p+"mlp.up_proj.weight", 0, 1/math.Sqrt(float64(h)), inter, h)
		add(p+"mlp.down_proj.weight", 0, 1/math.Sqrt(float64(inter)), h, inter)
	}
	add("model.norm.weight", normMean, 0.1, h)
	if !d.Tie {
		add("lm_head.weight", 0, 1/math.Sqrt(float64(h)), vocab, h)
	}
	return w
}

// WriteDecoder writes config.json and model.safetensors (weights in dtype dt)
// into dir, which is created if needed.
func WriteDecoder(dir string, d Decoder, dt formats.DType, w *DecoderWeights) error {
	if !canGenerate(dt) {
		return fmt.Errorf("cannot generate dtype %q", dt)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "config.json"), d.ConfigJSON(dt)); err != nil {
		return err
	}
	specs := make([]formats.TensorSpec, len(w.Names))
	for i, n := range w.Names {
		specs[i] = formats.TensorSpec{Name: n, DType: dt, Shape: w.Shapes[n]}
	}
	p, err := createPending(filepath.Join(dir, "model.safetensors"), specs, true)
	if err != nil {
		return err
	}
	for _, s := range p.w.Order() {
		v := w.Values[s.Name]
		buf := make([]byte, len(v)*dt.Size())
		encodeChunk(dt, v, buf)
		if err := p.w.WriteTensor(s.Name, bytes.NewReader(buf)); err != nil {
			p.abort()
			return err
		}
	}
	return p.commit()
}

// OverflowingDecoder is a small llama whose weights are all finite and within
// the float16 range but whose layer 2 MLP output goes past 65504 (up_proj and
// down_proj of layer 2 are scaled by 300 and 800): valid when served in bf16 or
// f32, infinite in f16, as a bf16-trained model served in fp16 can be.
func OverflowingDecoder() (Decoder, *DecoderWeights) {
	d := Decoder{Family: "llama", Vocab: 300, Hidden: 64, Intermediate: 172, Layers: 4, Heads: 4, KVHeads: 2}
	w := d.Weights(7)
	for name, f := range map[string]float64{"model.layers.2.mlp.up_proj.weight": 300, "model.layers.2.mlp.down_proj.weight": 800} {
		for i := range w.Values[name] {
			w.Values[name][i] *= f
		}
	}
	return d, w
}
