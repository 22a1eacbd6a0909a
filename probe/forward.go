package probe

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"strings"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
)

// Options control a probe.
type Options struct {
	DType     formats.DType // f32, bf16 or f16; "" means config.json's torch_dtype
	Tokens    []int         // nil means DefaultTokens(vocab_size)
	Positions int           // probe the last N positions' distributions; 0 means all
	Workers   int           // goroutines for matrix products; 0 means one per CPU
	Source    formats.SourceMode
	// Progress, when set, is called after each block of weights is read with
	// the bytes read so far and the bytes the probe reads in all.
	Progress func(done, total int64)
}

// TopK is how many of the most probable next tokens a position reports.
const TopK = 5

// DefaultTokens is the token set probed when none is given: eight ids spread
// evenly across the vocabulary, (2i+1)·V/16 for i = 0..7, away from both ends
// where special tokens usually sit.
func DefaultTokens(vocab int) []int {
	out := make([]int, 8)
	for i := range out {
		out[i] = (2*i + 1) * vocab / 16
	}
	return out
}

// Run probes the checkpoint at path: a .safetensors file (config.json beside
// it) or a checkpoint directory.
func Run(path string, o Options) (*Report, error) {
	ck, err := formats.Open(path)
	if err != nil {
		return nil, err
	}
	cfgPath := formats.JoinPath(ck.Dir, "config.json")
	cfg, err := ReadConfig(cfgPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: no config.json beside the weights; probe needs it to know the architecture", path)
	}
	if err != nil {
		return nil, err
	}
	for _, f := range ck.Files {
		if f.Err != nil {
			return nil, fmt.Errorf("cannot run the model: %v", f.Err)
		}
	}
	return RunCheckpoint(ck, cfg, o)
}

// RunCheckpoint probes an opened checkpoint with a parsed config.
func RunCheckpoint(ck *formats.Checkpoint, cfg *Config, o Options) (*Report, error) {
	r, _, err := run(ck, cfg, o)
	return r, err
}

// ErrNoServingDType: the checkpoint's config names a torch_dtype probe cannot
// serve in, and no dtype was given.
var ErrNoServingDType = errors.New("cannot be probed in that dtype: name a serving dtype (f32, bf16 or f16)")

// run is RunCheckpoint that also returns the logits of the probed positions
// (positions × vocab).
func run(ck *formats.Checkpoint, cfg *Config, o Options) (*Report, []float32, error) {
	dt := o.DType
	if dt == "" {
		dt = formats.F32 // from_pretrained's default when config.json names no dtype
		if cfg.TorchDType != "" {
			d, err := ParseDType(cfg.TorchDType)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: torch_dtype %q: %w", cfg.Path, cfg.TorchDType, ErrNoServingDType)
			}
			dt = d
		}
	}
	if _, err := ParseDType(string(dt)); err != nil {
		return nil, nil, err
	}
	tokens := o.Tokens
	if len(tokens) == 0 {
		tokens = DefaultTokens(cfg.Vocab)
	}
	for _, id := range tokens {
		if id < 0 || id >= cfg.Vocab {
			return nil, nil, fmt.Errorf("token id %d is outside the vocabulary (vocab_size %d)", id, cfg.Vocab)
		}
	}
	P := len(tokens)
	if o.Positions > 0 && o.Positions < P {
		P = o.Positions
	}
	w := newWeights(ck, dt, o.Source, o.Workers)
	defer w.close()
	if o.Progress != nil {
		w.progress, w.total = o.Progress, weightBytes(ck, cfg, len(tokens))
	}
	m := &model{cfg: cfg, w: w, dt: dt, round: roundFor(dt), T: len(tokens)}
	m.tr = tracker{dt: dt, maxFinite: dt.MaxFinite(), last: math.NaN()}
	r := &Report{Path: ck.Path, Arch: cfg.Arch, DType: dt, Tokens: tokens}
	logits, err := m.forward(tokens, P, r)
	if err != nil {
		return nil, nil, err
	}
	r.FirstNonFinite = m.tr.first
	r.Findings = m.findings(r) // in order: where it starts, what sampling sees, then warnings
	r.Healthy = true
	for _, f := range r.Findings {
		if f.Severity == "error" {
			r.Healthy = false
		}
	}
	return r, logits, nil
}

// weightBytes is how many bytes a probe of T tokens reads: every tensor, but
// of the embedding only T rows unless it is also the output layer, and no
// lm_head.weight when the embedding is tied to it.
func weightBytes(ck *formats.Checkpoint, cfg *Config, T int) int64 {
	var n int64
	for _, t := range ck.Tensors {
		n += t.Length()
	}
	outputIsEmbedding := cfg.Tie || ck.Tensor("lm_head.weight") == nil
	if t := ck.Tensor("model.embed_tokens.weight"); t != nil {
		n += int64(T) * int64(cfg.Hidden) * int64(t.DType.Size())
		if !outputIsEmbedding {
			n -= t.Length()
		}
	}
	if t := ck.Tensor("lm_head.weight"); t != nil && outputIsEmbedding {
		n -= t.Length()
	}
	return n
}

// model is one forward pass in progress.
type model struct {
	cfg   *Config
	w     *weights
	dt    formats.DType
	round rounder
	T     int
	tr    tracker
}

// tracker follows the activations in order of computation: the first one that
// holds a non-finite value, and the ones that come close to the dtype's range.
type tracker struct {
	dt        formats.DType
	maxFinite float64
	first     *Place
	last      float64 // absmax of the last entirely finite activation
	near      []Place // activations within 2× of the largest finite value
}

// see records an activation computed at (layer, where) and returns its
// statistics over finite values.
//
// pre is the largest finite magnitude the step computed in float32 before
// rounding its output to the dtype (NaN when not tracked).
func (tr *tracker) see(layer int, where string, v []float32, pre float64) (absmax, rms float64, nonFinite int) {
	absmax = math.NaN()
	var ss float64
	n := 0
	for _, x := range v {
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			nonFinite++
			continue
		}
		a := math.Abs(f)
		if !(a <= absmax) {
			absmax = a
		}
		ss += f * f
		n++
	}
	rms = math.NaN()
	if n > 0 {
		rms = math.Sqrt(ss / float64(n))
	}
	if tr.first != nil {
		return
	}
	if nonFinite > 0 {
		tr.first = &Place{Layer: layer, Where: where, LastFiniteAbsmax: tr.last, FiniteAbsmax: absmax, NonFinite: nonFinite, UnroundedAbsmax: pre}
		return
	}
	tr.last = absmax
	if absmax >= tr.maxFinite/2 {
		tr.near = append(tr.near, Place{Layer: layer, Where: where, FiniteAbsmax: absmax})
	}
	return
}

func (m *model) forward(tokens []int, P int, r *Report) ([]float32, error) {
	c, T, H := m.cfg, m.T, m.cfg.Hidden
	x, err := m.w.rows("model.embed_tokens.weight", c.Vocab, H, tokens)
	if err != nil {
		return nil, err
	}
	if c.ScaleEmbed {
		// Gemma: hidden * tensor(√hidden, dtype): the factor is itself rounded
		// to the dtype, and so is the product (rounding point).
		s := round1(m.dt, float32(math.Sqrt(float64(H))))
		for i := range x {
			x[i] *= s
		}
		m.round(x)
	}
	am, rms, nf := m.tr.see(-1, WhereEmbedding, x, math.NaN())
	r.Embedding = LayerStats{Layer: -1, AttnAbsmax: math.NaN(), MLPAbsmax: math.NaN(), ResidAbsmax: am, ResidRMS: rms, NonFinite: nf}
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		st := LayerStats{Layer: l}
		h, err := m.rmsNorm(x, T, H, p+"input_layernorm.weight")
		if err != nil {
			return nil, err
		}
		m.tr.see(l, WhereNorm, h, math.NaN())
		a, err := m.attention(h, l, p+"self_attn.")
		if err != nil {
			return nil, err
		}
		st.AttnAbsmax, _, _ = m.tr.see(l, WhereAttention, a, m.w.unrounded)
		m.tr.see(l, WhereResidual, x, m.residual(x, a))
		h, err = m.rmsNorm(x, T, H, p+"post_attention_layernorm.weight")
		if err != nil {
			return nil, err
		}
		m.tr.see(l, WhereNorm, h, math.NaN())
		f, err := m.mlp(h, p+"mlp.")
		if err != nil {
			return nil, err
		}
		st.MLPAbsmax, _, _ = m.tr.see(l, WhereMLP, f, m.w.unrounded)
		st.ResidAbsmax, st.ResidRMS, st.NonFinite = m.tr.see(l, WhereResidual, x, m.residual(x, f))
		r.Layers = append(r.Layers, st)
	}
	L := c.Layers
	h, err := m.rmsNorm(x, T, H, "model.norm.weight")
	if err != nil {
		return nil, err
	}
	m.tr.see(L, WhereFinalNorm, h, math.NaN())
	// Logits of the probed (last P) positions only.
	hp := h[(T-P)*H:]
	head := "lm_head.weight"
	if c.Tie || !m.w.has(head) {
		if !c.Tie {
			return nil, fmt.Errorf("%s: lm_head.weight is missing and config.json has tie_word_embeddings=false", m.w.ck.Path)
		}
		head = "model.embed_tokens.weight" // tied: the output layer is the embedding
	}
	logits, err := m.w.linear(hp, P, H, head, c.Vocab, "")
	if err != nil {
		return nil, err
	}
	r.LogitsAbsmax, _, nf = m.tr.see(L, WhereLogits, logits, m.w.unrounded)
	r.LogitsFinite = nf == 0
	for i := 0; i < P; i++ {
		r.Positions = append(r.Positions, distribution(T-P+i, logits[i*c.Vocab:(i+1)*c.Vocab]))
	}
	return logits, nil
}

// residual adds y to the residual stream x in place; the sum is stored in the
// activation dtype (rounding point: every residual add). It returns the
// largest finite magnitude of the sum before rounding.
func (m *model) residual(x, y []float32) float64 {
	for i := range x {
		x[i] += y[i]
	}
	pre := finiteAbsmax(x)
	m.round(x)
	return pre
}

// finiteAbsmax is the largest finite magnitude in v, NaN when none.
func finiteAbsmax(v []float32) float64 {
	m := math.NaN()
	for _, x := range v {
		if a := math.Abs(float64(x)); a <= math.MaxFloat32 && !(a <= m) {
			m = a
		}
	}
	return m
}

// rmsNorm normalises each row of x (T rows of n) with the weight name.
func (m *model) rmsNorm(x []float32, T, n int, name string) ([]float32, error) {
	wt, err := m.w.vector(name, n)
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(x))
	for t := 0; t < T; t++ {
		m.normRow(x[t*n:(t+1)*n], wt, out[t*n:(t+1)*n])
	}
	return out, nil
}

// normRow is RMSNorm of one vector as Hugging Face computes it: the input cast
// to float32, x·rsqrt(mean(x²)+eps) in float32. Llama/Qwen/Mistral then cast
// back to the activation dtype (rounding point) and multiply by the weight in
// that dtype (rounding point); Gemma multiplies by (1 + weight) in float32 and
// casts once (rounding point).
func (m *model) normRow(x, wt, out []float32) {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	variance := float32(ss / float64(len(x)))
	inv := float32(1 / math.Sqrt(float64(variance+float32(m.cfg.Eps))))
	if m.cfg.GemmaNorm {
		for i, v := range x {
			out[i] = round1(m.dt, float32(v*inv)*(1+wt[i]))
		}
		return
	}
	for i, v := range x {
		out[i] = round1(m.dt, wt[i]*round1(m.dt, v*inv))
	}
}

// attention is the self-attention block on normalised input h: q, k, v
// projections (with biases when the checkpoint has them), Qwen3's q/k norms,
// rotary embeddings, causal grouped-query attention (eager), o_proj.
func (m *model) attention(h []float32, layer int, p string) ([]float32, error) {
	c, T, H := m.cfg, m.T, m.cfg.Hidden
	hd, nh, nkv := c.HeadDim, c.Heads, c.KVHeads
	q, err := m.w.linear(h, T, H, p+"q_proj.weight", nh*hd, p+"q_proj.bias")
	if err != nil {
		return nil, err
	}
	k, err := m.w.linear(h, T, H, p+"k_proj.weight", nkv*hd, p+"k_proj.bias")
	if err != nil {
		return nil, err
	}
	v, err := m.w.linear(h, T, H, p+"v_proj.weight", nkv*hd, p+"v_proj.bias")
	if err != nil {
		return nil, err
	}
	if c.QKNorm {
		for _, qk := range []struct {
			x    []float32
			name string
		}{{q, "q_norm.weight"}, {k, "k_norm.weight"}} {
			wt, err := m.w.vector(p+qk.name, hd)
			if err != nil {
				return nil, err
			}
			for i := 0; i < len(qk.x); i += hd {
				m.normRow(qk.x[i:i+hd], wt, qk.x[i:i+hd])
			}
		}
	}
	cos, sin := m.rotary()
	m.rope(q, nh, cos, sin)
	m.rope(k, nkv, cos, sin)

	scale := float32(1 / math.Sqrt(float64(hd)))
	out := make([]float32, T*nh*hd)
	scores := make([]float32, T)
	group := nh / nkv
	for head := 0; head < nh; head++ {
		kh := head / group // grouped-query attention: each k/v head serves a group of q heads
		for i := 0; i < T; i++ {
			qi := q[i*nh*hd+head*hd : i*nh*hd+head*hd+hd]
			lo := 0
			if c.SlidingWindow > 0 && layer >= c.WindowFrom {
				lo = max(0, i-c.SlidingWindow+1)
			}
			for j := range scores {
				scores[j] = float32(math.Inf(-1)) // causal mask
			}
			for j := lo; j <= i; j++ {
				kj := k[j*nkv*hd+kh*hd : j*nkv*hd+kh*hd+hd]
				var s float32
				for d := range qi {
					s += qi[d] * kj[d]
				}
				// q·kᵀ is a matrix product (rounding point), then scaled by
				// head_dim^-0.5 (rounding point).
				scores[j] = round1(m.dt, round1(m.dt, s)*scale)
			}
			// Softmax in float32 (dtype=torch.float32), then cast to the
			// query dtype (rounding point).
			mx := float32(math.Inf(-1))
			nan := false
			for j := lo; j <= i; j++ {
				if scores[j] != scores[j] {
					nan = true
				}
				mx = max(mx, scores[j])
			}
			var sum float32
			for j := lo; j <= i; j++ {
				e := float32(math.Exp(float64(scores[j] - mx)))
				scores[j] = e
				sum += e
			}
			for j := lo; j <= i; j++ {
				scores[j] = round1(m.dt, scores[j]/sum)
				if nan {
					scores[j] = float32(math.NaN())
				}
			}
			oi := out[i*nh*hd+head*hd : i*nh*hd+head*hd+hd]
			for d := range oi {
				var s float32
				for j := lo; j <= i; j++ {
					s += scores[j] * v[j*nkv*hd+kh*hd+d]
				}
				oi[d] = s
			}
		}
	}
	m.round(out) // rounding point: probabilities · v is a matrix product
	return m.w.linear(out, T, nh*hd, p+"o_proj.weight", H, p+"o_proj.bias")
}

// rotary returns the cos and sin tables [T][head_dim] of the positions
// 0..T-1: computed in float32 from inv_freq and cast to the activation dtype
// (rounding point).
func (m *model) rotary() (cos, sin []float32) {
	hd := m.cfg.HeadDim
	inv := m.cfg.invFreq()
	cos, sin = make([]float32, m.T*hd), make([]float32, m.T*hd)
	for t := 0; t < m.T; t++ {
		for i, f := range inv {
			a := float64(float32(t) * f)
			c, s := round1(m.dt, float32(math.Cos(a))), round1(m.dt, float32(math.Sin(a)))
			cos[t*hd+i], cos[t*hd+i+hd/2] = c, c
			sin[t*hd+i], sin[t*hd+i+hd/2] = s, s
		}
	}
	return cos, sin
}

// rope applies q·cos + rotate_half(q)·sin to every head of x (T × heads ×
// head_dim) in place; each product and the sum are stored in the activation
// dtype (rounding points: three elementwise ops).
func (m *model) rope(x []float32, heads int, cos, sin []float32) {
	hd := m.cfg.HeadDim
	half := hd / 2
	tmp := make([]float32, hd)
	for t := 0; t < m.T; t++ {
		cs, sn := cos[t*hd:(t+1)*hd], sin[t*hd:(t+1)*hd]
		for h := 0; h < heads; h++ {
			v := x[(t*heads+h)*hd : (t*heads+h+1)*hd]
			copy(tmp, v)
			for i := range v {
				var rh float32 // rotate_half: (-x2, x1)
				if i < half {
					rh = -tmp[i+half]
				} else {
					rh = tmp[i-half]
				}
				a := round1(m.dt, float32(tmp[i]*cs[i]))
				b := round1(m.dt, float32(rh*sn[i]))
				v[i] = round1(m.dt, a+b)
			}
		}
	}
}

// mlp is down(act(gate(h)) · up(h)).
func (m *model) mlp(h []float32, p string) ([]float32, error) {
	c, T, H, I := m.cfg, m.T, m.cfg.Hidden, m.cfg.Intermediate
	g, err := m.w.linear(h, T, H, p+"gate_proj.weight", I, p+"gate_proj.bias")
	if err != nil {
		return nil, err
	}
	u, err := m.w.linear(h, T, H, p+"up_proj.weight", I, p+"up_proj.bias")
	if err != nil {
		return nil, err
	}
	for i, x := range g {
		// The activation is computed in float32 and stored in the dtype
		// (rounding point); so is its product with up (rounding point).
		a := round1(m.dt, activation(c.Act, x))
		g[i] = round1(m.dt, a*u[i])
	}
	return m.w.linear(g, T, I, p+"down_proj.weight", H, p+"down_proj.bias")
}

func activation(act string, x float32) float32 {
	f := float64(x)
	switch act {
	case "gelu_tanh":
		return float32(0.5 * f * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(f+0.044715*f*f*f))))
	case "gelu":
		return float32(0.5 * f * (1 + math.Erf(f/math.Sqrt2)))
	}
	return float32(f / (1 + math.Exp(-f))) // silu
}

// distribution is softmax of one position's logits (in float32, as sampling
// does after logits.float()), checked as torch.multinomial checks it.
func distribution(pos int, logits []float32) Position {
	p := Position{Position: pos, Valid: true}
	mx := math.Inf(-1)
	nan, inf := 0, 0
	for _, l := range logits {
		f := float64(l)
		switch {
		case math.IsNaN(f):
			nan++
		case math.IsInf(f, 0):
			inf++
		}
		if f > mx {
			mx = f
		}
	}
	probs := make([]float64, len(logits))
	var sum float32
	for i, l := range logits {
		e := float32(math.Exp(float64(l) - mx))
		if nan > 0 {
			e = float32(math.NaN())
		}
		probs[i] = float64(e)
		sum += e
	}
	var total float64
	bad := 0
	for i := range probs {
		probs[i] = float64(float32(probs[i]) / sum)
		if math.IsNaN(probs[i]) || math.IsInf(probs[i], 0) || probs[i] < 0 {
			bad++
		} else {
			total += probs[i]
		}
	}
	switch {
	case bad > 0:
		p.Valid = false
		p.Why = fmt.Sprintf("%d of %d probabilities are NaN, infinite or negative (logits: %d NaN, %d infinite)", bad, len(probs), nan, inf)
	case math.Abs(total-1) > 1e-3:
		p.Valid = false
		p.Why = fmt.Sprintf("the probabilities sum to %g, not 1", total)
	}
	// The TopK largest logits, in order; NaN logits have no rank (all NaN: no
	// top tokens). Ties keep the lower token id first.
	var top []int
	for i, l := range logits {
		if l != l || (len(top) == TopK && l <= logits[top[TopK-1]]) {
			continue
		}
		j := len(top)
		if j < TopK {
			top = append(top, i)
		} else {
			j--
		}
		for ; j > 0 && logits[top[j-1]] < l; j-- {
			top[j] = top[j-1]
		}
		top[j] = i
	}
	for _, i := range top {
		p.Top = append(p.Top, Top{Token: i, Prob: probs[i], Logit: float64(logits[i])})
	}
	return p
}

// module names the weights a place reads, for findings.
func module(layer, layers int, where string) string {
	switch {
	case layer < 0:
		return "model.embed_tokens"
	case layer >= layers && where == WhereLogits:
		return "lm_head"
	case layer >= layers:
		return "model.norm"
	}
	p := fmt.Sprintf("model.layers.%d.", layer)
	switch where {
	case WhereAttention:
		return p + "self_attn"
	case WhereMLP:
		return p + "mlp"
	}
	return strings.TrimSuffix(p, ".")
}

// PlaceText says where a place is, for a person.
func PlaceText(layer, layers int, where string) string {
	switch {
	case layer < 0:
		return "the embedding"
	case layer >= layers && where == WhereLogits:
		return "the logits"
	case layer >= layers:
		return "the final norm"
	}
	return fmt.Sprintf("layer %d %s", layer, where)
}

func (m *model) findings(r *Report) []inspect.Finding {
	var out []inspect.Finding
	L := m.cfg.Layers
	if f := r.FirstNonFinite; f != nil {
		msg := fmt.Sprintf("in %s the activations stop being finite at %s (%d non-finite values); the largest value before it was %s",
			strings.ToLower(string(r.DType)), PlaceText(f.Layer, L, f.Where), f.NonFinite, num(f.LastFiniteAbsmax))
		if !math.IsNaN(f.FiniteAbsmax) {
			msg += fmt.Sprintf(" and the largest finite value there is %s", num(f.FiniteAbsmax))
		}
		if f.UnroundedAbsmax > m.tr.maxFinite {
			msg += fmt.Sprintf("; computed in float32 it reaches %s, beyond the largest finite %s value (%s)",
				num(f.UnroundedAbsmax), strings.ToLower(string(r.DType)), num(m.tr.maxFinite))
		}
		out = append(out, inspect.Finding{Severity: "error", Check: CheckProbe, Tensor: module(f.Layer, L, f.Where), File: r.Path, Message: msg})
	}
	var invalid []string
	why := ""
	for _, p := range r.Positions {
		if !p.Valid {
			invalid = append(invalid, fmt.Sprint(p.Position))
			if why == "" {
				why = p.Why
			}
		}
	}
	if len(invalid) > 0 {
		out = append(out, inspect.Finding{Severity: "error", Check: CheckProbe, Tensor: "lm_head", File: r.Path,
			Message: fmt.Sprintf("the next-token distribution is not valid at %d of %d probed positions (%s; first: %s): sampling fails with \"probability tensor contains either inf, nan or element < 0\"",
				len(invalid), len(r.Positions), strings.Join(invalid, ", "), why)})
	}
	for _, n := range m.tr.near {
		out = append(out, inspect.Finding{Severity: "warning", Check: CheckProbe, Tensor: module(n.Layer, L, n.Where), File: r.Path,
			Message: fmt.Sprintf("%s reaches %s, within 2× of the largest finite %s value (%s)", PlaceText(n.Layer, L, n.Where), num(n.FiniteAbsmax), strings.ToLower(string(r.DType)), num(m.tr.maxFinite))})
	}
	return out
}

func num(v float64) string {
	if math.IsNaN(v) {
		return "none (no finite value)"
	}
	return fmt.Sprintf("%.6g", v)
}
