package probe

import (
	"fmt"
	"math"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// refForward is the plain float64 forward pass the tests compare probe
// against, written from Hugging Face's modeling code without any of probe's
// rounding or blocking: it returns the logits [T][vocab] of every position.
// w holds the weights as the model reads them (already rounded to float32).
func refForward(d synth.Decoder, cfg *Config, w map[string][]float64, tokens []int) [][]float64 {
	H, hd := d.Hidden, cfg.HeadDim
	nh, nkv, I, V := d.Heads, d.KVHeads, d.Intermediate, d.Vocab
	T := len(tokens)
	linear := func(x []float64, name string, out, in int, bias string) []float64 {
		W := w[name]
		y := make([]float64, out)
		for o := 0; o < out; o++ {
			var s float64
			for k := 0; k < in; k++ {
				s += W[o*in+k] * x[k]
			}
			if b, ok := w[bias]; ok {
				s += b[o]
			}
			y[o] = s
		}
		return y
	}
	norm := func(x []float64, name string) []float64 {
		W := w[name]
		var ss float64
		for _, v := range x {
			ss += v * v
		}
		r := 1 / math.Sqrt(ss/float64(len(x))+cfg.Eps)
		y := make([]float64, len(x))
		for i, v := range x {
			if d.Family == "gemma" {
				y[i] = v * r * (1 + W[i])
			} else {
				y[i] = v * r * W[i]
			}
		}
		return y
	}
	// Rotary inverse frequencies with rope_scaling, from the HF formulas.
	inv := make([]float64, hd/2)
	for i := range inv {
		inv[i] = 1 / math.Pow(cfg.RopeTheta, float64(2*i)/float64(hd))
		switch cfg.Rope.Type {
		case "linear":
			inv[i] /= cfg.Rope.Factor
		case "llama3":
			r := cfg.Rope
			wl := 2 * math.Pi / inv[i]
			if wl > r.OriginalMax/r.LowFreqFactor {
				inv[i] /= r.Factor
			} else if wl >= r.OriginalMax/r.HighFreqFactor {
				s := (r.OriginalMax/wl - r.LowFreqFactor) / (r.HighFreqFactor - r.LowFreqFactor)
				inv[i] = (1-s)*inv[i]/r.Factor + s*inv[i]
			}
		}
	}
	rope := func(v []float64, pos int) {
		out := make([]float64, hd)
		for i := 0; i < hd; i++ {
			a := float64(pos) * inv[i%(hd/2)]
			var rh float64
			if i < hd/2 {
				rh = -v[i+hd/2]
			} else {
				rh = v[i-hd/2]
			}
			out[i] = v[i]*math.Cos(a) + rh*math.Sin(a)
		}
		copy(v, out)
	}
	x := make([][]float64, T)
	for t, id := range tokens {
		x[t] = append([]float64(nil), w["model.embed_tokens.weight"][id*H:(id+1)*H]...)
		if d.Family == "gemma" {
			for i := range x[t] {
				x[t][i] *= math.Sqrt(float64(H))
			}
		}
	}
	for l := 0; l < d.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		q, k, v := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		for t := range x {
			h := norm(x[t], p+"input_layernorm.weight")
			q[t] = linear(h, p+"self_attn.q_proj.weight", nh*hd, H, p+"self_attn.q_proj.bias")
			k[t] = linear(h, p+"self_attn.k_proj.weight", nkv*hd, H, p+"self_attn.k_proj.bias")
			v[t] = linear(h, p+"self_attn.v_proj.weight", nkv*hd, H, p+"self_attn.v_proj.bias")
			for hh := 0; hh < nh; hh++ {
				if d.Family == "qwen3" {
					copy(q[t][hh*hd:], norm(q[t][hh*hd:(hh+1)*hd], p+"self_attn.q_norm.weight"))
				}
				rope(q[t][hh*hd:(hh+1)*hd], t)
			}
			for hh := 0; hh < nkv; hh++ {
				if d.Family == "qwen3" {
					copy(k[t][hh*hd:], norm(k[t][hh*hd:(hh+1)*hd], p+"self_attn.k_norm.weight"))
				}
				rope(k[t][hh*hd:(hh+1)*hd], t)
			}
		}
		for t := range x {
			att := make([]float64, nh*hd)
			for hh := 0; hh < nh; hh++ {
				kh := hh * nkv / nh
				lo := 0
				if cfg.SlidingWindow > 0 && l >= cfg.WindowFrom && t-cfg.SlidingWindow+1 > 0 {
					lo = t - cfg.SlidingWindow + 1
				}
				s := make([]float64, t+1)
				mx := math.Inf(-1)
				for j := lo; j <= t; j++ {
					for e := 0; e < hd; e++ {
						s[j] += q[t][hh*hd+e] * k[j][kh*hd+e]
					}
					s[j] /= math.Sqrt(float64(hd))
					mx = math.Max(mx, s[j])
				}
				var sum float64
				for j := lo; j <= t; j++ {
					s[j] = math.Exp(s[j] - mx)
					sum += s[j]
				}
				for j := lo; j <= t; j++ {
					for e := 0; e < hd; e++ {
						att[hh*hd+e] += s[j] / sum * v[j][kh*hd+e]
					}
				}
			}
			o := linear(att, p+"self_attn.o_proj.weight", H, nh*hd, "")
			for i := range o {
				x[t][i] += o[i]
			}
			h := norm(x[t], p+"post_attention_layernorm.weight")
			g := linear(h, p+"mlp.gate_proj.weight", I, H, "")
			u := linear(h, p+"mlp.up_proj.weight", I, H, "")
			for i := range g {
				if d.Family == "gemma" {
					g[i] = 0.5 * g[i] * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(g[i]+0.044715*g[i]*g[i]*g[i]))) * u[i]
				} else {
					g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
				}
			}
			m := linear(g, p+"mlp.down_proj.weight", H, I, "")
			for i := range m {
				x[t][i] += m[i]
			}
		}
	}
	head := "lm_head.weight"
	if d.Tie {
		head = "model.embed_tokens.weight"
	}
	out := make([][]float64, T)
	for t := range x {
		out[t] = linear(norm(x[t], "model.norm.weight"), head, V, H, "")
	}
	return out
}

// families are small models with real models' proportions: grouped key/value
// heads, an intermediate size near 2.7× hidden, a head_dim that differs from
// hidden/heads where the family allows it.
var families = []synth.Decoder{
	{Family: "llama", Vocab: 300, Hidden: 64, Intermediate: 172, Layers: 3, Heads: 4, KVHeads: 2},
	{Family: "llama", Vocab: 300, Hidden: 64, Intermediate: 172, Layers: 2, Heads: 4, KVHeads: 1, Tie: true,
		Config: map[string]any{"rope_theta": 500000.0, "rope_scaling": map[string]any{"rope_type": "llama3", "factor": 8.0,
			"low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64}}},
	{Family: "llama", Vocab: 300, Hidden: 64, Intermediate: 172, Layers: 2, Heads: 4, KVHeads: 4,
		Config: map[string]any{"rope_scaling": map[string]any{"type": "linear", "factor": 4.0}}},
	{Family: "mistral", Vocab: 300, Hidden: 64, Intermediate: 172, Layers: 3, Heads: 8, KVHeads: 2,
		Config: map[string]any{"sliding_window": 3}},
	{Family: "qwen2", Vocab: 300, Hidden: 64, Intermediate: 172, Layers: 3, Heads: 4, KVHeads: 2, Bias: true, Tie: true,
		Config: map[string]any{"rope_theta": 1000000.0}},
	{Family: "qwen3", Vocab: 300, Hidden: 64, Intermediate: 192, Layers: 3, Heads: 4, KVHeads: 2, HeadDim: 32,
		Config: map[string]any{"use_sliding_window": true, "sliding_window": 2, "max_window_layers": 1}},
	{Family: "gemma", Vocab: 300, Hidden: 64, Intermediate: 192, Layers: 3, Heads: 4, KVHeads: 1, HeadDim: 32, Tie: true},
}

// roundedValues is what a model written in F32 holds.
func roundedValues(w *synth.DecoderWeights) map[string][]float64 {
	out := map[string][]float64{}
	for n, v := range w.Values {
		r := make([]float64, len(v))
		for i, x := range v {
			r[i] = float64(float32(x))
		}
		out[n] = r
	}
	return out
}

func argmax(v []float64) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}

// TestLogitsMatchFloat64Reference: in f32 mode, every supported family's
// logits equal the float64 reference within 1e-4 relative, top-1 identical.
func TestLogitsMatchFloat64Reference(t *testing.T) {
	tokens := []int{1, 17, 255, 3, 99, 42, 7, 200}
	for i, d := range families {
		t.Run(fmt.Sprintf("%d-%s", i, d.Family), func(t *testing.T) {
			dir := t.TempDir()
			w := d.Weights(int64(i + 1))
			if err := synth.WriteDecoder(dir, d, formats.F32, w); err != nil {
				t.Fatal(err)
			}
			r, err := Run(dir, Options{Tokens: tokens})
			if err != nil {
				t.Fatal(err)
			}
			if r.DType != formats.F32 || r.Arch != d.Family {
				t.Fatalf("dtype %s arch %s", r.DType, r.Arch)
			}
			cfg, err := ReadConfig(dir + "/config.json")
			if err != nil {
				t.Fatal(err)
			}
			ref := refForward(d, cfg, roundedValues(w), tokens)
			got := logitsOf(t, dir, tokens, formats.F32)
			compareLogits(t, got, ref, "the float64 reference", 1e-4, true)
			for p := range tokens {
				if !r.Positions[p].Valid || r.Positions[p].Top[0].Token != argmax(ref[p]) {
					t.Errorf("position %d: report %+v", p, r.Positions[p])
				}
			}
			if !r.Healthy || r.FirstNonFinite != nil {
				t.Errorf("healthy model reported unhealthy: %+v", r.Findings)
			}
		})
	}
}

// compareLogits checks every position's logits against a reference: within
// tol of the reference's largest magnitude, and (when top1) the same top-1
// token.
func compareLogits(t *testing.T, got, ref [][]float64, what string, tol float64, top1 bool) {
	t.Helper()
	for p := range ref {
		var scale, worst float64
		for v := range ref[p] {
			scale = math.Max(scale, math.Abs(ref[p][v]))
			worst = math.Max(worst, math.Abs(got[p][v]-ref[p][v]))
		}
		t.Logf("position %d: relative difference from %s %.3g", p, what, worst/scale)
		if worst > tol*scale {
			t.Errorf("position %d: logits differ from %s by %g (absmax %g, relative %g)", p, what, worst, scale, worst/scale)
		}
		if a, b := argmax(ref[p]), argmax(got[p]); top1 && a != b {
			t.Errorf("position %d: top-1 token %d, %s's %d", p, b, what, a)
		}
	}
}

// logitsOf runs the forward pass and returns every position's logits.
func logitsOf(t *testing.T, dir string, tokens []int, dt formats.DType) [][]float64 {
	t.Helper()
	ck, err := formats.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ReadConfig(dir + "/config.json")
	if err != nil {
		t.Fatal(err)
	}
	lg, _, err := Logits(ck, cfg, dt, tokens, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]float64, len(tokens))
	for p := range out {
		out[p] = make([]float64, cfg.Vocab)
		for v := range out[p] {
			out[p][v] = float64(lg[p*cfg.Vocab+v])
		}
	}
	return out
}

// Logits runs a probe and returns its logits (every position).
func Logits(ck *formats.Checkpoint, cfg *Config, dt formats.DType, tokens []int, workers int) ([]float32, *Report, error) {
	r, lg, err := run(ck, cfg, Options{DType: dt, Tokens: tokens, Workers: workers})
	return lg, r, err
}
