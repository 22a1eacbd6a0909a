package optim

import (
	"context"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
)

// CheckOptimizer is the check name of the optimizer findings other than
// nonfinite values: shapes, step, negative second moments, predicted update.
const CheckOptimizer = "optimizer"

// DefaultUpdateWarn is the predicted update ratio above which a parameter is a
// warning: one step would move it by 10% of its norm.
const DefaultUpdateWarn = 0.1

// chunk is how many elements are read from each tensor at a time.
const chunk = 1 << 16

// Structure runs the checks that need no tensor values (inspect's): a state
// shape that disagrees with its parameter (error) and a step that disagrees
// with trainer_state.json's global_step (warning, once).
func (s *State) Structure() []inspect.Finding {
	var out []inspect.Finding
	add := func(sev, tensor, format string, args ...any) {
		out = append(out, inspect.Finding{Severity: sev, Check: CheckOptimizer, Tensor: tensor, File: s.File, Message: fmt.Sprintf(format, args...)})
	}
	for _, p := range s.Params {
		if p.Name != nil && !p.ShapeOK && p.Weight != nil {
			add("error", pathOf(p, p.State[0].Key), "the optimizer state of %s has shape %v but the parameter has shape %v: the optimizer belongs to another model (resuming would fail or mix up parameters)",
				*p.Name, p.Shape, p.Weight.Shape)
		}
		if s.GlobalStep != nil && p.Step != nil && *p.Step != float64(*s.GlobalStep) {
			add("warning", pathOf(p, "step"), "the optimizer step of %s is %g but trainer_state.json's global_step is %d: the optimizer state and the training state were not saved together",
				p.Label(), *p.Step, *s.GlobalStep)
		}
	}
	// A step mismatch is one fact, not one per parameter: keep the first.
	return firstOfStepWarnings(out)
}

// Check runs every optimizer check (scan's): Structure, then the value
// checks. r is the scan of the checkpoint the state was read from (its
// nonfinite counts are the engine's); the nonfinite findings of state tensors
// are rewritten in place to name their parameter. It fills each parameter's
// NonFinite and UpdateRatio and returns the new findings. updateWarn ≤ 0
// means DefaultUpdateWarn.
func (s *State) Check(ctx context.Context, r *inspect.Result, updateWarn float64) (out []inspect.Finding, err error) {
	if updateWarn <= 0 {
		updateWarn = DefaultUpdateWarn
	}
	out = s.Structure()
	add := func(sev, tensor, format string, args ...any) {
		out = append(out, inspect.Finding{Severity: sev, Check: CheckOptimizer, Tensor: tensor, File: s.File, Message: fmt.Sprintf(format, args...)})
	}
	if s.own != nil {
		// The optimizer file is not part of r's checkpoint: scan it here.
		res, err := s.scanFused(ctx, s.own, s.ScanOptions)
		if err != nil {
			return nil, err
		}
		s.OwnScan, r = res, res
		defer func() { out = append(out, res.Findings...) }()
	}
	// Nonfinite: counts from the scan, messages naming the parameter.
	stats := map[string]*inspect.TensorStats{}
	if r != nil {
		for _, ts := range r.Tensors {
			stats[ts.Name] = ts
		}
		byName := map[string]*stateRef{}
		for t, ref := range s.byTensor {
			byName[t.Name] = ref
		}
		for i := range r.Findings {
			f := &r.Findings[i]
			if ref := byName[f.Tensor]; ref != nil && f.Check == inspect.CheckNonFinite && f.File == s.File {
				f.Message = fmt.Sprintf("%s of %s holds %s; %s", ref.key, ref.p.Label(), nonfiniteText(stats[f.Tensor]), f.Message)
			}
		}
	}
	for _, p := range s.Params {
		var n uint64
		for _, st := range p.State {
			if st.Tensor == nil {
				continue
			}
			if ts := stats[st.Tensor.Name]; ts != nil {
				n += ts.NonFinite()
			}
		}
		p.NonFinite = &n
	}
	preds := s.predictAll(ctx)
	for i, p := range s.Params {
		neg, ratio, err := preds[i].negative, preds[i].ratio, preds[i].err
		if err != nil {
			return nil, err
		}
		if neg > 0 {
			add("error", pathOf(p, "exp_avg_sq"), "exp_avg_sq of %s holds %d negative values: impossible for Adam (a running mean of squares); the state is corrupt", p.Label(), neg)
		}
		if ratio != nil {
			p.UpdateRatio = ratio
			if s.MaxUpdate == nil || *ratio > *s.MaxUpdate {
				l := p.Label()
				s.MaxUpdate, s.MaxUpdateParam = ratio, &l
			}
			if *ratio > updateWarn {
				add("warning", pathOf(p, "exp_avg"), "the next Adam step would move %s by %.3g of its norm (above %g): the run is about to blow up there", p.Label(), *ratio, updateWarn)
			}
		}
	}
	return out, nil
}

func firstOfStepWarnings(in []inspect.Finding) []inspect.Finding {
	var out []inspect.Finding
	n := 0
	for _, f := range in {
		if strings.Contains(f.Message, "global_step") {
			n++
			if n > 1 {
				continue
			}
		}
		out = append(out, f)
	}
	if n > 1 {
		for i := range out {
			if strings.Contains(out[i].Message, "global_step") {
				out[i].Message += fmt.Sprintf(" (%d parameters disagree)", n)
			}
		}
	}
	return out
}

func nonfiniteText(ts *inspect.TensorStats) string {
	if ts == nil {
		return "nonfinite values"
	}
	var parts []string
	if ts.NaN > 0 {
		parts = append(parts, fmt.Sprintf("%d NaN", ts.NaN))
	}
	if ts.PosInf > 0 {
		parts = append(parts, fmt.Sprintf("%d +Inf", ts.PosInf))
	}
	if ts.NegInf > 0 {
		parts = append(parts, fmt.Sprintf("%d -Inf", ts.NegInf))
	}
	return strings.Join(parts, ", ")
}

// pathOf is the tensor name of a parameter's state key: its key path in the
// optimizer file (state.17.exp_avg), in a checkpoint directory as in a file
// given directly.
func pathOf(p *Param, key string) string {
	for _, st := range p.State {
		if st.Key == key && st.Tensor != nil {
			return st.Tensor.Name
		}
	}
	return fmt.Sprintf("state.%d.%s", p.ID, key)
}

func (p *Param) state(key string) *formats.Tensor {
	for _, st := range p.State {
		if st.Key == key {
			return st.Tensor
		}
	}
	return nil
}

// prediction is predict's result for one parameter.
type prediction struct {
	negative uint64
	ratio    *float64
	err      error
}

// predictAll runs predict for every parameter, on as many goroutines as
// there are CPUs (each parameter on one, so every result is the one a single
// goroutine computes); the results are in the order of s.Params.
func (s *State) predictAll(ctx context.Context) []prediction {
	out := make([]prediction, len(s.Params))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(s.Params)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(s.Params) {
					return
				}
				if err := ctx.Err(); err != nil {
					out[i].err = err
					continue
				}
				if i < len(s.fused) && s.fused[i].ok {
					out[i] = s.fused[i].prediction // from the one-read scan (Scan)
					continue
				}
				out[i].negative, out[i].ratio, out[i].err = s.predict(s.Params[i])
			}
		}()
	}
	wg.Wait()
	return out
}

// predict streams a parameter's exp_avg_sq (counting negative values) and,
// when the update can be computed, exp_avg and the weight, returning
// ‖lr·m̂/(√v̂+ε)‖ / ‖θ‖ with m̂ = m/(1-β1^step), v̂ = v/(1-β2^step) (v is
// max_exp_avg_sq when amsgrad keeps one, as Adam then uses it). Weight decay
// is not part of it. Nonfinite inputs leave the ratio nil.
func (s *State) predict(p *Param) (negative uint64, ratio *float64, err error) {
	streams, canRatio, denom, k := s.plan(p)
	if len(streams) == 0 {
		return 0, nil, nil
	}
	v, m := streams[0], streams[1%len(streams)]
	// FP32 moments (the usual case) go to the update's loop as they are
	// stored, without a float64 copy, and so does the weight.
	raw32 := canRatio && m.DType == formats.F32 && v.DType == formats.F32 && denom.DType == formats.F32
	readers := make([]*viewStream, len(streams))
	for i, t := range streams {
		vs, err := openStream(t)
		if err != nil {
			return 0, nil, err
		}
		defer vs.close()
		vs.keepRaw = raw32
		readers[i] = vs
	}
	acc := updateAcc{parts: make([][2]float64, 0, rangesOf(int64(numel(v.Shape))))}
	total := numel(v.Shape)
	for done := uint64(0); done < total; {
		n := int(min(total-done, chunk))
		for _, rd := range readers {
			if err := rd.next(n); err != nil {
				return 0, nil, err
			}
		}
		if raw32 {
			vr, dr, before := readers[0].raw[:4*n], readers[0].raw[:4*n], acc.neg
			if denom != v {
				dr = readers[3].raw[:4*n]
			}
			updateSums32(readers[1].raw[:4*n], dr, readers[2].raw[:p.Weight.DType.Size()*n], p.Weight.DType, n, &k, &acc)
			if denom == v {
				negative += acc.neg - before // counted by the update's loop
			} else {
				negative += negativeF32(vr)
			}
		} else {
			vb := readers[0].buf[:n]
			for _, x := range vb {
				if x < 0 {
					negative++
				}
			}
			if canRatio {
				mb, tb, db := readers[1].buf[:n], readers[2].buf[:n], vb
				if denom != v {
					db = readers[3].buf[:n]
				}
				updateSums(mb, db, tb, &k, &acc)
			}
		}
		done += uint64(n)
	}
	if canRatio {
		acc.finish()
		ratio = ratioOf(acc.parts)
	}
	return negative, ratio, nil
}

// ratioOf is the update ratio √Σd² / √Σθ² of a parameter's range partials
// (sumParts), nil when it is not finite.
func ratioOf(parts [][2]float64) *float64 {
	sumD, sumT := sumParts(parts)
	r := math.Sqrt(sumD) / math.Sqrt(sumT)
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return nil
	}
	return &r
}

// plan is predict's decision for p: the tensors it reads, in order
// (exp_avg_sq; then, when the update can be computed, exp_avg, the weight and,
// with amsgrad, max_exp_avg_sq; none without exp_avg_sq), whether the update
// can be computed, the second moment Adam
// divides by, and the update's constants.
func (s *State) plan(p *Param) (streams []*formats.Tensor, canRatio bool, denom *formats.Tensor, k updateConsts) {
	v := p.state("exp_avg_sq")
	if v == nil || v.Cut {
		return nil, false, nil, k
	}
	m := p.state("exp_avg")
	var g *Group
	if p.Group >= 0 && p.Group < len(s.Groups) {
		g = &s.Groups[p.Group]
	}
	canRatio = m != nil && !m.Cut && slices.Equal(m.Shape, v.Shape) && p.Weight != nil && p.ShapeOK && !p.Weight.Cut &&
		slices.Equal(p.Weight.Shape, v.Shape) && p.Step != nil && *p.Step > 0 && g != nil && g.LR != nil && g.Eps != nil && len(g.Betas) == 2
	// With amsgrad, Adam divides by the running maximum of the second moment.
	denom = v
	if mx := p.state("max_exp_avg_sq"); mx != nil {
		denom = mx
		canRatio = canRatio && !mx.Cut && slices.Equal(mx.Shape, v.Shape)
	}
	streams = []*formats.Tensor{v}
	if canRatio {
		streams = append(streams, m, p.Weight)
		if denom != v {
			streams = append(streams, denom)
		}
		k = newUpdateConsts(*g.LR, *g.Eps, g.Betas[0], g.Betas[1], *p.Step)
	}
	return streams, canRatio, denom, k
}

// viewStream reads a tensor's elements as float64, chunk by chunk (or, when
// keepRaw is set, only their bytes into raw).
type viewStream struct {
	f       formats.Source
	vr      io.Reader
	dt      formats.DType
	raw     []byte
	buf     []float64
	keepRaw bool
}

func openStream(t *formats.Tensor) (*viewStream, error) {
	f, err := formats.OpenSource(t.File.Path, formats.Pread)
	if err != nil {
		return nil, err
	}
	return &viewStream{f: f, vr: formats.NewViewReader(f, t.File.Size, t), dt: t.DType,
		raw: make([]byte, chunk*t.DType.Size()), buf: make([]float64, chunk)}, nil
}

func (s *viewStream) close() { s.f.Close() }

func (s *viewStream) next(n int) error {
	if s.keepRaw {
		_, err := io.ReadFull(s.vr, s.raw[:n*s.dt.Size()])
		return err
	}
	got, err := readFloats(s.vr, s.dt, s.buf[:n], s.raw)
	if err != nil {
		return err
	}
	if got != n {
		return fmt.Errorf("%s: short read of a tensor (%d of %d elements)", s.f.Path(), got, n)
	}
	return nil
}

// readFloats reads len(dst) elements of dt from r into dst.
func readFloats(r io.Reader, dt formats.DType, dst []float64, raw []byte) (int, error) {
	need := len(dst) * dt.Size()
	if len(raw) < need {
		raw = make([]byte, need)
	}
	if _, err := io.ReadFull(r, raw[:need]); err != nil {
		return 0, err
	}
	return inspect.DecodeFloat64(dt, raw[:need], dst), nil
}
