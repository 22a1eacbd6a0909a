package diff

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/ckpt-tool/ckpt/formats"
)

// Event kinds found in a training log.
const (
	EventNonFiniteLoss     = "nonfinite_loss"      // loss is NaN or ±Inf
	EventNonFiniteGradNorm = "nonfinite_grad_norm" // grad_norm is NaN or ±Inf
	EventLRJump            = "lr_jump"             // the learning rate jumps up
	EventGradNormSpike     = "grad_norm_spike"     // grad_norm far above its recent median
	EventGradNormRise      = "grad_norm_rise"      // grad_norm stays far above its early level
	EventLossSpike         = "loss_spike"          // loss far above its recent median
)

// The event rules. Each compares a logged value with the logged values before
// it, so that one noisy entry does not move the reference:
//   - a grad_norm spike: the value exceeds SpikeFactor × the median of the
//     previous SpikeWindow finite values (at least SpikeMinHistory of them);
//   - a loss spike: the loss exceeds LossSpikeFactor × that median (for a
//     positive median), the largest of those values, and the median by
//     LossSpikeMADs robust standard deviations (1.4826 × the median absolute
//     deviation) and by LossSpikeFloor × the early loss level (the median of the
//     first SpikeWindow values) or 0.001, whichever is larger: the Trainer
//     rounds losses to 4 decimals, and some losses (RL objectives) hover near
//     zero, where rounding alone makes large ratios;
//   - consecutive flagged entries form one event;
//   - a rise: after the first SpikeWindow logged values, grad_norm exceeds
//     RiseFactor × their median for RiseMinRun consecutive entries;
//   - a learning-rate jump: the rate grows at least LRJumpRatio× from one logged
//     value to the next, and faster per step than LRJumpSlope × the fastest
//     increase before it (a linear warmup ramps at a constant slope, which is
//     not a jump; the first logged value counts as a ramp from 0 at step 0).
const (
	SpikeWindow     = 20
	SpikeMinHistory = 5
	SpikeFactor     = 10.0
	LossSpikeFactor = 2.0
	LossSpikeMADs   = 6.0
	LossSpikeFloor  = 0.1
	RiseFactor      = 10.0
	RiseMinRun      = 3
	LRJumpRatio     = 1.5
	LRJumpSlope     = 3.0
)

// Event is one noteworthy entry of the training log, placed between the
// checkpoints around it.
type Event struct {
	Step    int      `json:"step"`
	Kind    string   `json:"kind"`
	Message string   `json:"message"`
	Value   *float64 `json:"value"` // the logged value (null when not finite)
	// Previous is the logged value before a learning-rate jump (null otherwise).
	Previous *float64 `json:"previous,omitempty"`
	// Steps of the checkpoints around the event: the last one saved before it
	// and the first one saved at or after it (null when there is none).
	CheckpointBefore *int `json:"checkpoint_before"`
	CheckpointAfter  *int `json:"checkpoint_after"`
}

// TrainingLog is what the Trainer's log says.
type TrainingLog struct {
	Path                       string  `json:"path"` // the trainer_state.json read ("" when none)
	GlobalStep                 int     `json:"global_step"`
	FirstNonFiniteLossStep     *int    `json:"first_nonfinite_loss_step"`
	FirstNonFiniteGradNormStep *int    `json:"first_nonfinite_grad_norm_step"`
	PeakLR                     float64 `json:"peak_learning_rate"`
	Events                     []Event `json:"events"`

	State *formats.TrainerState `json:"-"` // nil when no trainer_state.json was found
}

// point is one logged value.
type point struct {
	step int
	v    float64
}

func series(st *formats.TrainerState, get func(*formats.LogEntry) *float64) []point {
	var out []point
	for i := range st.LogHistory {
		e := &st.LogHistory[i]
		if p := get(e); p != nil {
			out = append(out, point{e.Step, *p})
		}
	}
	return out
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// AnalyzeLog finds the events of a training log. checkpointSteps are the steps
// of the run's checkpoints (ascending), to place each event between them.
func AnalyzeLog(st *formats.TrainerState, checkpointSteps []int) *TrainingLog {
	tl := &TrainingLog{Events: []Event{}}
	if st == nil {
		return tl
	}
	tl.Path, tl.GlobalStep, tl.State = st.Path, st.GlobalStep, st
	loss := series(st, func(e *formats.LogEntry) *float64 { return e.Loss })
	gn := series(st, func(e *formats.LogEntry) *float64 { return e.GradNorm })
	lr := series(st, func(e *formats.LogEntry) *float64 { return e.LearningRate })
	for _, p := range lr {
		if finite(p.v) {
			tl.PeakLR = math.Max(tl.PeakLR, p.v)
		}
	}
	add := func(step int, kind string, v float64, format string, args ...any) {
		e := Event{Step: step, Kind: kind, Message: fmt.Sprintf(format, args...)}
		if finite(v) {
			e.Value = &v
		}
		tl.Events = append(tl.Events, e)
	}
	tl.FirstNonFiniteLossStep = nonFiniteRuns(loss, lr, "loss", EventNonFiniteLoss, add)
	tl.FirstNonFiniteGradNormStep = nonFiniteRuns(gn, lr, "grad_norm", EventNonFiniteGradNorm, add)
	lrJumps(lr, add, func() *float64 {
		e := &tl.Events[len(tl.Events)-1]
		e.Previous = new(float64)
		return e.Previous
	})
	spikes(gn, "grad_norm", EventGradNormSpike, false, add)
	rise(gn, add)
	spikes(loss, "loss", EventLossSpike, true, add)
	sort.SliceStable(tl.Events, func(i, j int) bool { return tl.Events[i].Step < tl.Events[j].Step })
	for i := range tl.Events {
		placeEvent(&tl.Events[i], checkpointSteps)
	}
	return tl
}

// placeEvent says between which checkpoints an event happened.
func placeEvent(e *Event, cps []int) {
	for _, s := range cps {
		if s < e.Step {
			v := s
			e.CheckpointBefore = &v
		} else if e.CheckpointAfter == nil {
			v := s
			e.CheckpointAfter = &v
		}
	}
	switch {
	case e.CheckpointBefore != nil && e.CheckpointAfter != nil:
		e.Message += fmt.Sprintf("; between checkpoint-%d and checkpoint-%d", *e.CheckpointBefore, *e.CheckpointAfter)
	case e.CheckpointAfter != nil:
		e.Message += fmt.Sprintf("; before the first checkpoint (checkpoint-%d)", *e.CheckpointAfter)
	case e.CheckpointBefore != nil:
		e.Message += fmt.Sprintf("; after the newest checkpoint (checkpoint-%d)", *e.CheckpointBefore)
	}
}

// PyFloat formats a logged value as Python writes the non-finite ones (NaN,
// Infinity, -Infinity) and with 4 significant digits otherwise.
func PyFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "Infinity"
	case math.IsInf(v, -1):
		return "-Infinity"
	}
	return fmt.Sprintf("%.4g", v)
}

// nonFiniteRuns reports each run of consecutive non-finite values as one event
// and returns the first non-finite step.
func nonFiniteRuns(ps, lr []point, what, kind string, add func(int, string, float64, string, ...any)) *int {
	var first *int
	lrAt := map[int]float64{}
	varying := false
	for i, p := range lr {
		lrAt[p.step] = p.v
		varying = varying || (i > 0 && p.v != lr[i-1].v)
	}
	for i := 0; i < len(ps); {
		if finite(ps[i].v) {
			i++
			continue
		}
		j := i
		for j < len(ps) && !finite(ps[j].v) {
			j++
		}
		if first == nil {
			s := ps[i].step
			first = &s
		}
		msg := fmt.Sprintf("%s is %s at step %d", what, PyFloat(ps[i].v), ps[i].step)
		switch {
		case j == len(ps) && j-i > 1:
			msg += fmt.Sprintf(" and not finite at every one of the %d logged steps after it (to step %d)", j-i-1, ps[j-1].step)
		case j-i > 1:
			msg += fmt.Sprintf(" and at the %d logged steps after it, finite again from step %d", j-i-1, ps[j].step)
		case j < len(ps):
			msg += fmt.Sprintf(", finite again at step %d", ps[j].step)
		}
		if j-i == 1 && i > 0 && varying {
			cur, ok1 := lrAt[ps[i].step]
			prev, ok2 := lrAt[ps[i-1].step]
			if ok1 && ok2 && cur == prev {
				msg += " (the learning rate did not advance: the optimizer step was skipped, as the fp16 loss scaler does; harmless when isolated)"
			}
		}
		add(ps[i].step, kind, ps[i].v, "%s", msg)
		i = j
	}
	return first
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// spikes flags values far above the median of the values before them.
func spikes(ps []point, what, kind string, loss bool, add func(int, string, float64, string, ...any)) {
	var hist, early []float64
	for _, p := range ps {
		if finite(p.v) && len(early) < SpikeWindow {
			early = append(early, math.Abs(p.v))
		}
	}
	floor := math.Max(1e-3, LossSpikeFloor*median(early))
	flagged := func(v float64) (bool, float64, float64) {
		if len(hist) < SpikeMinHistory {
			return false, 0, 0
		}
		w := hist[max(0, len(hist)-SpikeWindow):]
		med := median(w)
		if !loss {
			return med > 0 && v > SpikeFactor*med, med, v / med
		}
		dev := make([]float64, len(w))
		for i, x := range w {
			dev[i] = math.Abs(x - med)
		}
		sigma := 1.4826 * median(dev)
		d := v - med
		ok := d > LossSpikeMADs*sigma && d > (LossSpikeFactor-1)*math.Abs(med) && d > floor && v > maxOf(w)
		ratio := math.Inf(1)
		if med != 0 {
			ratio = v / med
		}
		return ok, med, ratio
	}
	for i := 0; i < len(ps); i++ {
		p := ps[i]
		if !finite(p.v) {
			continue
		}
		ok, med, ratio := flagged(p.v)
		if !ok {
			hist = append(hist, p.v)
			continue
		}
		// One event per run of flagged values, judged against the history before the run.
		peak, peakStep, n, last := p.v, p.step, 1, p.step
		for i+1 < len(ps) && finite(ps[i+1].v) {
			if ok2, _, _ := flagged(ps[i+1].v); !ok2 {
				break
			}
			i++
			n++
			last = ps[i].step
			if ps[i].v > peak {
				peak, peakStep = ps[i].v, ps[i].step
			}
		}
		w := min(len(hist), SpikeWindow)
		msg := fmt.Sprintf("%s spikes to %s at step %d, %s× the median (%s) of the %d logged values before", what, PyFloat(p.v), p.step, ratioText(ratio), PyFloat(med), w)
		if n > 1 {
			msg += fmt.Sprintf("; it stays that high for %d logged steps (to step %d, peak %s at step %d)", n, last, PyFloat(peak), peakStep)
		}
		add(p.step, kind, p.v, "%s", msg)
		for k := i - n + 1; k <= i; k++ {
			hist = append(hist, ps[k].v)
		}
	}
}

func maxOf(xs []float64) float64 {
	m := math.Inf(-1)
	for _, x := range xs {
		m = math.Max(m, x)
	}
	return m
}

func ratioText(r float64) string {
	if math.IsInf(r, 0) || math.IsNaN(r) {
		return "∞"
	}
	if r >= 100 {
		return fmt.Sprintf("%.0f", r)
	}
	return fmt.Sprintf("%.1f", r)
}

// rise flags the first sustained climb of grad_norm far above its early level.
func rise(ps []point, add func(int, string, float64, string, ...any)) {
	var early []float64
	for _, p := range ps {
		if finite(p.v) && len(early) < SpikeWindow {
			early = append(early, p.v)
		}
	}
	if len(early) < SpikeMinHistory {
		return
	}
	base := median(early)
	if base <= 0 {
		return
	}
	run, seen := 0, 0
	for i, p := range ps {
		if finite(p.v) {
			seen++
		}
		if seen <= len(early) {
			continue
		}
		if finite(p.v) && p.v > RiseFactor*base {
			run++
		} else {
			run = 0
		}
		if run == RiseMinRun {
			s := ps[i-RiseMinRun+1]
			add(s.step, EventGradNormRise, s.v, "grad_norm climbs above %s× its early level (median %s of the first %d logged values) from step %d and stays there for %d+ logged steps",
				ratioText(RiseFactor), PyFloat(base), len(early), s.step, RiseMinRun)
			return
		}
	}
}

// lrJumps flags learning-rate jumps (see the rule above).
func lrJumps(ps []point, add func(int, string, float64, string, ...any), last func() *float64) {
	var fin []point
	for _, p := range ps {
		if finite(p.v) {
			fin = append(fin, p)
		}
	}
	if len(fin) < 2 {
		return
	}
	maxSlope := fin[0].v / float64(max(1, fin[0].step))
	for i := 1; i < len(fin); i++ {
		prev, cur := fin[i-1], fin[i]
		ds := float64(max(1, cur.step-prev.step))
		slope := (cur.v - prev.v) / ds
		if prev.v <= 0 {
			maxSlope = math.Max(maxSlope, slope)
			continue
		}
		if cur.v >= LRJumpRatio*prev.v && slope > LRJumpSlope*maxSlope {
			add(cur.step, EventLRJump, cur.v, "learning rate jumps from %s to %s (%s×) at step %d",
				PyFloat(prev.v), PyFloat(cur.v), ratioText(cur.v/prev.v), cur.step)
			*last() = prev.v
			continue
		}
		maxSlope = math.Max(maxSlope, slope)
	}
}

// Kinds lists the kinds of events present, for summaries.
func (tl *TrainingLog) Kinds() map[string][]Event {
	out := map[string][]Event{}
	for _, e := range tl.Events {
		out[e.Kind] = append(out[e.Kind], e)
	}
	return out
}

// describeSteps lists the steps of events ("step 5", "steps 5, 18").
func describeSteps(es []Event) string {
	var s []string
	for _, e := range es {
		s = append(s, fmt.Sprint(e.Step))
	}
	if len(s) == 1 {
		return "step " + s[0]
	}
	return "steps " + strings.Join(s, ", ")
}
