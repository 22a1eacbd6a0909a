package diff

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
)

// Advice kinds.
const (
	AdviceLRTooHigh     = "learning_rate_too_high"
	AdviceWarmup        = "missing_warmup"
	AdviceClipping      = "gradient_clipping"
	AdviceFP16Scaling   = "fp16_loss_scaling"
	fullFineTuneHighLR  = 1e-4 // above this a full fine-tune's learning rate is high
	adapterHighLR       = 1e-3 // above this even a LoRA adapter's is
	warmupPeakFraction  = 0.5  // a first logged rate at this fraction of the peak means no warmup
	suggestedLRDivision = 10
)

// recommend picks the checkpoint to roll back to and the advice that fits
// what was found. It may scan the recommended checkpoint to confirm it (one
// scan beyond the search's budget) when the search did not.
func (b *bisector) recommend(ctx context.Context) (Recommendation, error) {
	rep := b.rep
	rec := Recommendation{Advice: []Advice{}}
	onset := rep.DriftOnset
	lh, fu := rep.LastHealthy, rep.FirstUnhealthy
	onsetUsable := onset != nil && (lh == nil || onset.FromStep <= lh.Step) && (fu == nil || onset.FromStep < fu.Step)
	switch {
	case onsetUsable:
		rec.RollbackTo = &Ref{onset.FromPath, onset.FromStep}
		rec.Reason = fmt.Sprintf("%s is the last checkpoint before the drift onset: from step %d to step %d the weights moved %s (relative update), %s× the median of the intervals before; damage usually begins there",
			baseName(onset.FromPath), onset.FromStep, onset.ToStep, fmtRel(onset.RelUpdate), onset.FactorText())
		if fu != nil && lh != nil && lh.Step != onset.FromStep {
			rec.Reason += fmt.Sprintf(", long before the first unhealthy checkpoint (%s); %s scans healthy but carries the drifted weights", baseName(fu.Path), baseName(lh.Path))
		} else if fu == nil {
			rec.Reason += "; every checkpoint scans healthy, so roll back only if the model's quality degraded"
		}
	case lh != nil && fu != nil:
		rec.RollbackTo = &Ref{lh.Path, lh.Step}
		rec.Reason = fmt.Sprintf("%s is the last healthy checkpoint before the first unhealthy one (%s); no drift onset was found before it", baseName(lh.Path), baseName(fu.Path))
	case fu != nil:
		rec.Reason = fmt.Sprintf("every checkpoint is unhealthy, even the oldest (%s): restart from the base model", baseName(fu.Path))
	default:
		rec.Reason = fmt.Sprintf("all %d checkpoints scan healthy and the updates show no onset: nothing to roll back", len(b.complete))
	}
	if rec.RollbackTo != nil {
		if err := b.confirm(ctx, &rec); err != nil {
			return rec, err
		}
	}
	rec.Advice = b.advice()
	b.resume(&rec)
	return rec, nil
}

// resume says where to resume training and why the newer candidates are not
// resumable; a checkpoint with healthy weights and a poisoned optimizer gets
// a note of its own.
func (b *bisector) resume(rec *Recommendation) {
	known := false
	for _, v := range b.rep.Checkpoints {
		known = known || v.Resumable != nil
	}
	if !known {
		return
	}
	lr := b.rep.LastResumable
	var not []string
	for i := len(b.rep.Checkpoints) - 1; i >= 0; i-- {
		v := b.rep.Checkpoints[i]
		if lr != nil && v.Path == lr.Path {
			break
		}
		if v.Resumable == nil || *v.Resumable {
			continue
		}
		if v.Verdict == Healthy {
			b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("%s: weights healthy, optimizer state poisoned (%s): its weights may be deployed, training must not resume from it",
				baseName(v.Path), v.ResumeProblem))
			not = append(not, fmt.Sprintf("%s (weights healthy, optimizer state poisoned: %s)", baseName(v.Path), v.ResumeProblem))
		} else {
			not = append(not, fmt.Sprintf("%s (%s)", baseName(v.Path), v.ResumeProblem))
		}
	}
	if lr == nil {
		rec.ResumeReason = "no scanned checkpoint can be resumed from"
		if rec.RollbackTo != nil {
			rec.ResumeReason += fmt.Sprintf(": restart training from the weights of %s with a fresh optimizer", baseName(rec.RollbackTo.Path))
		}
	} else {
		rec.ResumeFrom = &Ref{lr.Path, lr.Step}
		rec.ResumeReason = fmt.Sprintf("resume training from %s: its weights are healthy and its optimizer state is finite and consistent", baseName(lr.Path))
	}
	if len(not) > 0 {
		rec.ResumeReason += "; not from " + strings.Join(not, ", ")
	}
}

// confirm scans the recommended checkpoint when the search did not; if it is
// unhealthy after all (damage that came and went), the last healthy one is
// recommended instead.
func (b *bisector) confirm(ctx context.Context, rec *Recommendation) error {
	var e *Entry
	for _, c := range b.complete {
		if c.Path == rec.RollbackTo.Path {
			e = c
		}
	}
	if e == nil {
		return nil
	}
	if _, done := b.scans[e]; done {
		return nil
	}
	ok, err := b.healthy(ctx, e)
	if err != nil {
		return err
	}
	b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("scanned %s once more to confirm the recommended checkpoint", baseName(e.Path)))
	if !ok && b.rep.LastHealthy != nil {
		rec.Reason = fmt.Sprintf("%s, before the drift onset, scans unhealthy (damage came and went); %s is the last healthy checkpoint the search confirmed", baseName(e.Path), baseName(b.rep.LastHealthy.Path))
		rec.RollbackTo = &Ref{b.rep.LastHealthy.Path, b.rep.LastHealthy.Step}
	}
	return nil
}

// facts are what the advice depends on, besides the log.
type facts struct {
	adapter   bool          // the weights are a PEFT adapter
	dtype     formats.DType // the float dtype holding most of the bytes
	scaler    bool          // some checkpoint holds scaler.pt
	nonfinite bool          // the first unhealthy checkpoint holds NaN/Inf
	trouble   bool          // something went wrong at all
}

func (b *bisector) facts() facts {
	var f facts
	newest := b.complete[len(b.complete)-1]
	if c, err := formats.Open(newest.Path); err == nil {
		f.adapter = c.Layout == formats.LayoutAdapter
		bytes := map[formats.DType]int64{}
		for _, t := range c.Tensors {
			if t.DType.IsFloat() {
				bytes[t.DType] += t.Length()
			}
		}
		var most int64
		for dt, n := range bytes {
			if n > most || (n == most && dt < f.dtype) {
				f.dtype, most = dt, n
			}
		}
	}
	for _, e := range b.entries {
		f.scaler = f.scaler || e.HasScaler
	}
	for _, c := range b.rep.Culprits {
		f.nonfinite = f.nonfinite || c.Check == inspect.CheckNonFinite
	}
	tl := b.rep.TrainingLog
	f.trouble = b.rep.FirstUnhealthy != nil || b.rep.DriftOnset != nil || tl.FirstNonFiniteGradNormStep != nil || tl.FirstNonFiniteLossStep != nil
	for _, e := range tl.Events {
		f.trouble = f.trouble || e.Kind == EventGradNormSpike || e.Kind == EventGradNormRise || e.Kind == EventLRJump
	}
	return f
}

// advice is the training-side advice that fits what the log and weights show.
func (b *bisector) advice() []Advice {
	out := []Advice{}
	f := b.facts()
	tl := b.rep.TrainingLog
	if !f.trouble {
		return out
	}
	kinds := tl.Kinds()
	onset := b.rep.DriftOnset
	jumps := kinds[EventLRJump]
	// Learning rate.
	high := fullFineTuneHighLR
	what := "full fine-tuning of a pretrained model, where 1e-5 to 5e-5 is usual"
	if f.adapter {
		high, what = adapterHighLR, "a LoRA adapter, where 1e-4 to 5e-4 is usual"
	}
	if tl.PeakLR >= high {
		msg := fmt.Sprintf("The learning rate reached %s", PyFloat(tl.PeakLR))
		if len(jumps) > 0 && jumps[0].Previous != nil {
			j := jumps[0]
			msg += fmt.Sprintf(" by a jump from %s at step %d", PyFloat(*j.Previous), j.Step)
			if j.CheckpointBefore != nil && j.CheckpointAfter != nil {
				msg += fmt.Sprintf(" (between checkpoint-%d and checkpoint-%d)", *j.CheckpointBefore, *j.CheckpointAfter)
			}
			if onset != nil && j.Step > onset.FromStep && j.Step <= onset.ToStep {
				msg += "; the drift onset is the interval that contains the jump, so the jump is the likely cause"
			}
		}
		msg += fmt.Sprintf(". That is high for %s: lower it, e.g. to %s.", what, PyFloat(tl.PeakLR/suggestedLRDivision))
		out = append(out, Advice{AdviceLRTooHigh, msg})
	}
	// Warmup.
	if st := tl.State; st != nil {
		lr := series(st, func(e *formats.LogEntry) *float64 { return e.LearningRate })
		var first *point
		for i := range lr {
			if finite(lr[i].v) {
				first = &lr[i]
				break
			}
		}
		switch {
		case first != nil && tl.PeakLR > 0 && first.v >= warmupPeakFraction*tl.PeakLR:
			out = append(out, Advice{AdviceWarmup, fmt.Sprintf("The first logged learning rate (%s at step %d) is already %.0f%% of the peak: there was no warmup. Ramp the rate up over the first steps (warmup_ratio=0.03 or warmup_steps).",
				PyFloat(first.v), first.step, 100*first.v/tl.PeakLR)})
		case len(jumps) > 0:
			out = append(out, Advice{AdviceWarmup, fmt.Sprintf("The learning rate changed at once at step %d, with no ramp: if a higher rate was intended (a resumed run with a new schedule), warm up to it over a few hundred steps.", jumps[0].Step)})
		}
	}
	// Gradient clipping.
	var gsteps []Event
	for _, k := range []string{EventGradNormSpike, EventGradNormRise, EventNonFiniteGradNorm} {
		gsteps = append(gsteps, kinds[k]...)
	}
	if len(gsteps) > 0 {
		peak, at := 0.0, 0
		if st := tl.State; st != nil {
			for _, p := range series(st, func(e *formats.LogEntry) *float64 { return e.GradNorm }) {
				if finite(p.v) && p.v > peak {
					peak, at = p.v, p.step
				}
			}
		}
		sort.SliceStable(gsteps, func(i, j int) bool { return gsteps[i].Step < gsteps[j].Step })
		msg := fmt.Sprintf("grad_norm spiked, climbed or overflowed at %s", describeSteps(gsteps))
		if peak > 0 {
			msg += fmt.Sprintf(" (peak %s at step %d)", PyFloat(peak), at)
		}
		msg += ". Keep gradient clipping on (max_grad_norm=1.0, the Trainer's default; not 0 or None). The logged grad_norm is measured before clipping, so growth that persists means the steps are too large even when clipped: lower the learning rate."
		out = append(out, Advice{AdviceClipping, msg})
	}
	// fp16.
	nonfiniteLog := tl.FirstNonFiniteGradNormStep != nil || tl.FirstNonFiniteLossStep != nil
	if f.dtype == formats.F16 && (f.nonfinite || nonfiniteLog) && !f.scaler {
		out = append(out, Advice{AdviceFP16Scaling, "The weights are fp16, values overflowed to Inf/NaN, and no checkpoint holds scaler.pt: this looks like fp16 training without loss scaling. Train in bf16 (bf16=True), or use mixed precision with its loss scaler (fp16=True with fp32 master weights), never a model cast to fp16."})
	}
	return out
}

func baseName(p string) string { return filepath.Base(p) }

func fmtRel(v float64) string {
	if math.Abs(v) >= 0.01 {
		return fmt.Sprintf("%.3f", v)
	}
	return fmt.Sprintf("%.2e", v)
}
