package diff

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
	"github.com/ckpt-tool/ckpt/optim"
)

// Until says which scan findings make a checkpoint unhealthy.
type Until string

const (
	UntilNonFinite Until = "nonfinite" // an error finding of the nonfinite check
	UntilOutlier   Until = "outlier"   // an error finding of the nonfinite or outlier checks
	UntilAny       Until = "any"       // any error finding (format problems included)
)

// ErrUnknownUntil means a health rule other than nonfinite, outlier or any.
var ErrUnknownUntil = errors.New("unknown health rule")

// ParseUntil accepts nonfinite, outlier or any.
func ParseUntil(s string) (Until, error) {
	switch u := Until(s); u {
	case UntilNonFinite, UntilOutlier, UntilAny:
		return u, nil
	}
	return "", fmt.Errorf("%w %q (want nonfinite, outlier or any)", ErrUnknownUntil, s)
}

// counts reports whether a finding decides health under u.
func (u Until) counts(f inspect.Finding) bool {
	if f.Severity != "error" {
		return false
	}
	switch u {
	case UntilNonFinite:
		return f.Check == inspect.CheckNonFinite
	case UntilOutlier:
		return f.Check == inspect.CheckNonFinite || f.Check == inspect.CheckOutlier
	}
	return true
}

// Verdict of one checkpoint.
type Verdict string

const (
	Healthy    Verdict = "healthy"
	Unhealthy  Verdict = "unhealthy"
	NotScanned Verdict = "not_scanned"
)

// BisectOptions control Bisect. Zero values take the defaults.
type BisectOptions struct {
	Until       Until           // [any]
	Fast        bool            // drift only between the checkpoints the search scanned
	NoDrift     bool            // skip the drift timeline entirely
	Scan        inspect.Options // for each scan
	Diff        Options         // for each drift comparison
	Top         int             // tensors and layers named per drift interval [5]
	OnsetFactor float64         // see DriftOnset [5]
	// UpdateWarn is the optimizer's predicted-update warning threshold
	// (0: optim.DefaultUpdateWarn).
	UpdateWarn float64
	// RunDir is where a trainer_state.json is looked for when no checkpoint
	// has one ("" for none).
	RunDir string
	// Log, when set, receives one line per step of the work (for a progress
	// display on stderr).
	Log func(format string, args ...any)
	// Intervals, when not nil, are drift intervals computed beforehand (by
	// PairIntervals, in parts): the drift timeline takes its intervals from
	// them instead of comparing checkpoints. They must cover every pair of
	// consecutive complete checkpoints; Fast cannot be used with them.
	Intervals []Interval
}

// Ref names a checkpoint.
type Ref struct {
	Path string `json:"path"`
	Step int    `json:"step"`
}

// CheckpointVerdict is one checkpoint of the series and what is known of it.
type CheckpointVerdict struct {
	Path       string  `json:"path"`
	Step       int     `json:"step"`
	Verdict    Verdict `json:"verdict"`
	Incomplete string  `json:"incomplete,omitempty"` // why it was skipped
	ScanOrder  int     `json:"scan_order,omitempty"` // 1 for the first scanned, ...
	Errors     int     `json:"errors,omitempty"`     // error findings that decided the verdict
	// Resumable: the weights are healthy and the optimizer state is finite
	// and consistent; null when not scanned or the checkpoint holds no
	// optimizer state. ResumeProblem is why not (the first optimizer error).
	Resumable     *bool  `json:"resumable,omitempty"`
	ResumeProblem string `json:"resume_problem,omitempty"`
	// MaxUpdate is the largest predicted Adam update ratio of the optimizer
	// state (docs/optimizer.md), null when unknown.
	MaxUpdate *float64 `json:"max_update_ratio,omitempty"`
}

// Culprit is a finding that made the first unhealthy checkpoint unhealthy.
type Culprit struct {
	Tensor  string `json:"tensor"`
	File    string `json:"file"`
	Layer   string `json:"layer,omitempty"`
	Check   string `json:"check"`
	Message string `json:"message"`
}

// Move is how far one tensor or layer moved in a drift interval.
type Move struct {
	Name      string   `json:"name"`
	RelUpdate *float64 `json:"rel_update"`
}

// Interval is the update between two consecutive checkpoints.
type Interval struct {
	FromStep   int      `json:"from_step"`
	ToStep     int      `json:"to_step"`
	FromPath   string   `json:"from_path"`
	ToPath     string   `json:"to_path"`
	RelUpdate  *float64 `json:"rel_update"` // ||θ_to − θ_from|| / ||θ_from|| over finite pairs; null when undefined
	Appeared   uint64   `json:"nonfinite_appeared"`
	TopTensors []Move   `json:"top_tensors"`
	TopLayers  []Move   `json:"top_layers"`
	Layers     []Move   `json:"layers"` // every layer in block order (tensors outside layers as "")
}

// Onset is the drift interval where the updates jump.
type Onset struct {
	FromStep  int     `json:"from_step"`
	ToStep    int     `json:"to_step"`
	FromPath  string  `json:"from_path"`
	ToPath    string  `json:"to_path"`
	RelUpdate float64 `json:"rel_update"`
	Baseline  float64 `json:"baseline"` // median of the earlier intervals' updates
	Factor    float64 `json:"factor"`   // RelUpdate / Baseline; 0 when the baseline is 0 (identical checkpoints before)
}

// FactorText is the factor for people: "∞" when the earlier updates were 0.
func (o *Onset) FactorText() string {
	if o.Baseline == 0 {
		return "∞"
	}
	return ratioText(o.Factor)
}

// OnsetFactorText is the factor of the onset rule for people ("5" for 5,
// "2.5" for 2.5).
func (r *Report) OnsetFactorText() string {
	return strconv.FormatFloat(r.OnsetFactor, 'g', 4, 64)
}

// Advice is one piece of training-side advice.
type Advice struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

// Recommendation is what to do.
type Recommendation struct {
	RollbackTo *Ref     `json:"rollback_to"`
	Reason     string   `json:"reason"`
	Advice     []Advice `json:"advice"`
	// ResumeFrom is the checkpoint to resume training from (weights and
	// optimizer state), null when none is known; ResumeReason says why it and
	// not the newer candidates ("" when no checkpoint holds optimizer state).
	ResumeFrom   *Ref   `json:"resume_from"`
	ResumeReason string `json:"resume_reason,omitempty"`
}

// Report is the result of Bisect; its JSON form is the bisect contract of
// DESIGN.md (checkpoints, scanned, last_healthy, first_unhealthy, culprits,
// drift, drift_onset, training_log) plus the recommendation.
type Report struct {
	Until          Until               `json:"until"`
	OnsetFactor    float64             `json:"onset_factor"` // the factor of the drift-onset rule this bisect applied
	Checkpoints    []CheckpointVerdict `json:"checkpoints"`
	Scanned        []Ref               `json:"scanned"`       // in the order they were scanned
	ScanBudget     int                 `json:"scan_budget"`   // ⌈log2 n⌉ + 2 for n complete checkpoints
	VerdictScans   int                 `json:"verdict_scans"` // scans the search used (the rest confirm the recommendation)
	LastHealthy    *Ref                `json:"last_healthy"`
	LastResumable  *Ref                `json:"last_resumable"` // the newest checkpoint to resume training from
	FirstUnhealthy *Ref                `json:"first_unhealthy"`
	Culprits       []Culprit           `json:"culprits"`
	Drift          []Interval          `json:"drift"`
	DriftOnset     *Onset              `json:"drift_onset"`
	TrainingLog    *TrainingLog        `json:"training_log"`
	Recommendation Recommendation      `json:"recommendation"`
	Notes          []string            `json:"notes"`
}

// ScanBudget is the most scans the search may use for n checkpoints.
func ScanBudget(n int) int {
	return bits.Len(uint(max(n, 1)-1)) + 2
}

// bisector holds the state of one Bisect.
type bisector struct {
	opts     BisectOptions
	entries  []*Entry
	complete []*Entry
	verdicts map[*Entry]*CheckpointVerdict
	scans    map[*Entry]*inspect.Result
	rep      *Report
}

func (b *bisector) log(format string, args ...any) {
	if b.opts.Log != nil {
		b.opts.Log(format, args...)
	}
}

// Bisect finds the first unhealthy checkpoint of a series by binary search
// (SearchFirstBad: at most ⌈log2 n⌉ + 1 scans, assuming damage persists once it
// appears, and both checkpoints it reports were scanned), then measures the
// drift between checkpoints, reads the training log and recommends what to
// roll back to, scanning the recommended checkpoint if the search did not (so
// at most ⌈log2 n⌉ + 2 scans in all).
func Bisect(ctx context.Context, entries []*Entry, opts BisectOptions) (*Report, error) {
	if opts.Until == "" {
		opts.Until = UntilAny
	}
	if opts.Top <= 0 {
		opts.Top = 5
	}
	if opts.OnsetFactor <= 0 {
		opts.OnsetFactor = DefaultOnsetFactor
	}
	if opts.Fast && opts.Intervals != nil {
		return nil, fmt.Errorf("drift intervals computed beforehand cover every pair; they cannot be used with Fast")
	}
	b := &bisector{opts: opts, entries: entries, verdicts: map[*Entry]*CheckpointVerdict{}, scans: map[*Entry]*inspect.Result{}}
	rep := &Report{Until: opts.Until, OnsetFactor: opts.OnsetFactor, Culprits: []Culprit{}, Drift: []Interval{}, Scanned: []Ref{}, Notes: []string{}}
	b.rep = rep
	for _, e := range entries {
		rep.Checkpoints = append(rep.Checkpoints, CheckpointVerdict{Path: e.Path, Step: e.Step, Verdict: NotScanned, Incomplete: e.Incomplete})
	}
	for i, e := range entries {
		b.verdicts[e] = &rep.Checkpoints[i]
		if e.Incomplete == "" {
			b.complete = append(b.complete, e)
		}
	}
	n := len(b.complete)
	if n == 0 {
		return nil, fmt.Errorf("%w: none of the %d checkpoints is complete", ErrNoSeries, len(entries))
	}
	rep.ScanBudget = ScanBudget(n)
	if err := b.search(ctx); err != nil {
		return nil, err
	}
	if !opts.NoDrift {
		if err := b.drift(ctx); err != nil {
			return nil, err
		}
		rep.DriftOnset = DriftOnset(rep.Drift, opts.OnsetFactor)
	}
	rep.TrainingLog = b.trainingLog()
	rec, err := b.recommend(ctx)
	if err != nil {
		return nil, err
	}
	rep.Recommendation = rec
	return rep, nil
}

// healthy scans one checkpoint (once) and returns its verdict.
func (b *bisector) healthy(ctx context.Context, e *Entry) (bool, error) {
	if r, ok := b.scans[e]; ok {
		return b.verdicts[e].Verdict == Healthy && r != nil, nil
	}
	b.log("scanning %s (scan %d of at most %d)", e.Path, len(b.rep.Scanned)+1, b.rep.ScanBudget)
	c, err := formats.Open(e.Path)
	if err != nil {
		return false, fmt.Errorf("%s: %w", e.Path, err)
	}
	r, err := inspect.Scan(ctx, c, b.opts.Scan)
	if err != nil {
		return false, fmt.Errorf("scanning %s: %w", e.Path, err)
	}
	st, _ := optim.Read(c) // a file that is not an optimizer state dict leaves resumability unknown
	if st != nil {
		st.ScanOptions = b.opts.Scan
		st.ScanOptions.Progress = nil
		fs, err := st.Check(ctx, r, b.opts.UpdateWarn)
		if err != nil {
			return false, fmt.Errorf("checking the optimizer state of %s: %w", e.Path, err)
		}
		r.Findings = append(r.Findings, fs...)
		inspect.SortFindings(r.Findings)
	}
	b.scans[e] = r
	b.rep.Scanned = append(b.rep.Scanned, Ref{e.Path, e.Step})
	v := b.verdicts[e]
	v.ScanOrder = len(b.rep.Scanned)
	for _, f := range r.Findings {
		if trainingStateFinding(f) {
			if f.Severity == "error" && v.ResumeProblem == "" {
				v.ResumeProblem = f.Message
			}
			continue
		}
		if b.opts.Until.counts(f) {
			v.Errors++
		}
	}
	v.Verdict = Healthy
	if v.Errors > 0 {
		v.Verdict = Unhealthy
	}
	if st != nil {
		ok := v.Verdict == Healthy && v.ResumeProblem == ""
		v.Resumable, v.MaxUpdate = &ok, st.MaxUpdate
		if v.Verdict != Healthy && v.ResumeProblem == "" {
			v.ResumeProblem = "its weights are unhealthy"
		}
	}
	return v.Verdict == Healthy, nil
}

// SearchFirstBad finds the boundary of a series of n items that are healthy
// up to some point and unhealthy from there on: it returns lo, the last
// healthy index (-1 when none), and hi = lo+1, the first unhealthy one (n when
// none). It probes the newest item first, then halves the interval between the
// last known healthy and the first known unhealthy item, so it calls healthy
// at most ⌈log2 n⌉ + 1 times, never twice for an item, and always for lo and
// hi when they are within the series.
func SearchFirstBad(n int, healthy func(i int) (bool, error)) (lo, hi int, err error) {
	lo, hi = -1, n
	if n == 0 {
		return lo, hi, nil
	}
	ok, err := healthy(n - 1)
	if err != nil {
		return lo, hi, err
	}
	if ok {
		return n - 1, n, nil
	}
	hi = n - 1
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		ok, err := healthy(mid)
		if err != nil {
			return lo, hi, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, hi, nil
}

// search is the binary search over the complete checkpoints.
func (b *bisector) search(ctx context.Context) error {
	cs := b.complete
	lo, hi, err := SearchFirstBad(len(cs), func(i int) (bool, error) { return b.healthy(ctx, cs[i]) })
	if err != nil {
		return err
	}
	b.rep.VerdictScans = len(b.rep.Scanned)
	if lo >= 0 {
		b.rep.LastHealthy = &Ref{cs[lo].Path, cs[lo].Step}
	}
	if hi < len(cs) {
		e := cs[hi]
		b.rep.FirstUnhealthy = &Ref{e.Path, e.Step}
		for _, f := range b.scans[e].Findings {
			if b.opts.Until.counts(f) && !trainingStateFinding(f) {
				layer, _, _ := formats.Layer(f.Tensor)
				b.rep.Culprits = append(b.rep.Culprits, Culprit{Tensor: f.Tensor, File: f.File, Layer: layer, Check: f.Check, Message: f.Message})
			}
		}
	}
	b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("scanned %d of %d complete checkpoints (budget %d), assuming damage persists once it appears",
		len(b.rep.Scanned), len(cs), b.rep.ScanBudget))
	return b.resumable(ctx, lo)
}

// trainingStateFinding reports whether a finding is about the training state
// (optimizer.pt and the other files a trainer writes beside the weights)
// rather than the weights: it decides resumability, not health.
func trainingStateFinding(f inspect.Finding) bool {
	return f.Check == optim.CheckOptimizer || (f.File != "" && formats.IsTrainingState(f.File))
}

// resumable finds the last resumable checkpoint: the last healthy one when its
// optimizer state is sound, else the newest earlier one that is (each scanned
// at most once; these scans are beyond the search's budget and noted).
func (b *bisector) resumable(ctx context.Context, lo int) error {
	cs := b.complete
	extra := 0
	for i := lo; i >= 0; i-- {
		_, scanned := b.scans[cs[i]]
		if _, err := b.healthy(ctx, cs[i]); err != nil {
			return err
		}
		if !scanned {
			extra++
		}
		v := b.verdicts[cs[i]]
		if v.Resumable == nil {
			break // no optimizer state: resumability unknown
		}
		if *v.Resumable {
			b.rep.LastResumable = &Ref{cs[i].Path, cs[i].Step}
			break
		}
	}
	if extra > 0 {
		b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("scanned %d more checkpoint(s) to find one whose optimizer state is sound", extra))
	}
	return nil
}

// driftEntries are the checkpoints the drift timeline runs over: every
// complete one (or, with Fast, the scanned ones) up to the first unhealthy.
func (b *bisector) driftEntries() []*Entry {
	var out []*Entry
	for _, e := range b.complete {
		if b.opts.Fast {
			if _, ok := b.scans[e]; !ok {
				continue
			}
		}
		out = append(out, e)
		if b.rep.FirstUnhealthy != nil && e.Path == b.rep.FirstUnhealthy.Path {
			break
		}
	}
	return out
}

func (b *bisector) drift(ctx context.Context) error {
	es := b.driftEntries()
	if len(es) < 2 {
		return nil
	}
	paths := make([]string, len(es))
	for i, e := range es {
		paths[i] = e.Path
	}
	if b.opts.Intervals != nil {
		return b.givenDrift(es)
	}
	b.log("drift over %d checkpoints, %s → %s (each read once)", len(es), es[0].Name(), es[len(es)-1].Name())
	results, err := CompareSeries(ctx, paths, b.opts.Diff)
	if err != nil {
		return fmt.Errorf("measuring drift from %s to %s: %w", es[0].Path, es[len(es)-1].Path, err)
	}
	for i, res := range results {
		b.rep.Drift = append(b.rep.Drift, NewInterval(es[i], es[i+1], res, b.opts.Top))
	}
	return nil
}

// givenDrift takes the drift timeline over es from opts.Intervals.
func (b *bisector) givenDrift(es []*Entry) error {
	byPair := map[[2]string]Interval{}
	for _, iv := range b.opts.Intervals {
		byPair[[2]string{iv.FromPath, iv.ToPath}] = iv
	}
	for i := range len(es) - 1 {
		iv, ok := byPair[[2]string{es[i].Path, es[i+1].Path}]
		if !ok {
			return fmt.Errorf("no drift interval from %s to %s was given", es[i].Path, es[i+1].Path)
		}
		b.rep.Drift = append(b.rep.Drift, iv)
	}
	return nil
}

func optFloat(v float64, ok bool) *float64 {
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// NewInterval summarises the comparison of two consecutive checkpoints as a
// drift interval, naming the top tensors and layers that moved most.
func NewInterval(from, to *Entry, res *Result, top int) Interval {
	iv := Interval{FromStep: from.Step, ToStep: to.Step, FromPath: from.Path, ToPath: to.Path,
		RelUpdate: optFloat(res.RelL2()), Appeared: res.Summary.Appeared, TopTensors: []Move{}, TopLayers: []Move{}, Layers: []Move{}}
	for _, t := range res.Tensors { // sorted by change already
		if len(iv.TopTensors) == top {
			break
		}
		if t.Status != Changed && t.Status != DTypeChanged {
			continue
		}
		if rel := optFloat(t.RelL2()); rel != nil {
			iv.TopTensors = append(iv.TopTensors, Move{t.Name, rel})
		}
	}
	var layers []Move
	for _, g := range res.Layers {
		m := Move{g.Key, optFloat(g.RelL2())}
		iv.Layers = append(iv.Layers, m)
		if g.Key != "" && m.RelUpdate != nil {
			layers = append(layers, m)
		}
	}
	sortMoves(layers)
	iv.TopLayers = append(iv.TopLayers, layers[:min(top, len(layers))]...)
	return iv
}

func sortMoves(ms []Move) {
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && *ms[j].RelUpdate > *ms[j-1].RelUpdate; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

// DefaultOnsetFactor is how many times the median of the earlier updates an
// interval's update must exceed to be the drift onset.
const DefaultOnsetFactor = 5.0

// OnsetMinHistory is how many earlier intervals the onset rule needs.
const OnsetMinHistory = 2

// DriftOnset applies the onset rule: the first interval whose relative update
// exceeds factor × the median of the updates of all the intervals before it
// (at least OnsetMinHistory of them). Intervals with an undefined update or
// where non-finite values appear are left out, both as candidates and from the
// baseline: a NaN checkpoint is damage already found by the scan, not drift.
// The median makes one noisy interval harmless; requiring two earlier
// intervals keeps a warmup from passing for an onset.
func DriftOnset(ivs []Interval, factor float64) *Onset {
	var hist []float64
	for _, iv := range ivs {
		if !onsetCounts(iv) {
			continue
		}
		r := *iv.RelUpdate
		if len(hist) >= OnsetMinHistory {
			base := median(hist)
			if (base > 0 && r > factor*base) || (base == 0 && r > 0) {
				f := 0.0 // JSON has no infinity
				if base > 0 {
					f = r / base
				}
				return &Onset{FromStep: iv.FromStep, ToStep: iv.ToStep, FromPath: iv.FromPath, ToPath: iv.ToPath, RelUpdate: r, Baseline: base, Factor: f}
			}
		}
		hist = append(hist, r)
	}
	return nil
}

// onsetCounts reports whether the onset rule looks at an interval.
func onsetCounts(iv Interval) bool { return iv.RelUpdate != nil && iv.Appeared == 0 }

// OnsetBaseline is what the onset rule compares the interval following ivs
// with: the median of their updates (the intervals DriftOnset leaves out are
// left out here too). ok is false when fewer than OnsetMinHistory intervals
// count, when the rule does not apply yet.
func OnsetBaseline(ivs []Interval) (baseline float64, ok bool) {
	var hist []float64
	for _, iv := range ivs {
		if onsetCounts(iv) {
			hist = append(hist, *iv.RelUpdate)
		}
	}
	if len(hist) < OnsetMinHistory {
		return 0, false
	}
	return median(hist), true
}

// trainingLog reads the newest trainer_state.json of the series.
func (b *bisector) trainingLog() *TrainingLog {
	var steps []int
	for _, e := range b.complete {
		steps = append(steps, e.Step)
	}
	var path string
	for i := len(b.entries) - 1; i >= 0 && path == ""; i-- {
		path = b.entries[i].TrainerState
	}
	if path == "" && b.opts.RunDir != "" && isFile(formats.JoinPath(b.opts.RunDir, "trainer_state.json")) {
		path = formats.JoinPath(b.opts.RunDir, "trainer_state.json")
	}
	if path == "" {
		b.rep.Notes = append(b.rep.Notes, "no trainer_state.json found: no training-log events")
		return AnalyzeLog(nil, steps)
	}
	st, err := formats.ReadTrainerState(path)
	if err != nil {
		var fe *formats.Error
		if errors.As(err, &fe) {
			b.rep.Notes = append(b.rep.Notes, "training log not read: "+fe.Error())
		} else {
			b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("training log not read: %v", err))
		}
		tl := AnalyzeLog(nil, steps)
		tl.Path = path
		return tl
	}
	return AnalyzeLog(st, steps)
}
