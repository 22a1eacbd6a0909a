package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/ckpt-tool/ckpt/diff"
	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/probe"
)

// bisect --until probe: the first checkpoint whose probe fails (the sampling
// failure users report), found by the same binary search as the weights'
// verdict, next to the first checkpoint with non-finite weights.

// bisectProbeJSON is the "probe" member of `ckpt bisect --until probe --json`.
type bisectProbeJSON struct {
	DType string `json:"dtype"` // as asked; "" when each checkpoint's torch_dtype
	// Probed lists every checkpoint probed, in order, with its result.
	Probed       []bisectProbed `json:"probed"`
	LastPassing  *diff.Ref      `json:"last_passing"`
	FirstFailing *diff.Ref      `json:"first_failing"`
	// FirstNonfiniteWeights is the weights' verdict (scan --until nonfinite).
	FirstNonfiniteWeights *diff.Ref `json:"first_nonfinite_weights"`
	Message               string    `json:"message"`
}

type bisectProbed struct {
	Path           string          `json:"path"`
	Step           int             `json:"step"`
	DType          string          `json:"dtype"`
	Healthy        bool            `json:"healthy"`
	FirstNonfinite *probePlaceJSON `json:"first_nonfinite"`
}

// bisectWithProbe is the bisect report with the probe search beside it.
type bisectWithProbe struct {
	*diff.Report
	Probe *bisectProbeJSON `json:"probe"`
}

// probeSeries searches the complete checkpoints for the first whose probe
// fails, assuming a failure persists once it appears.
func probeSeries(es []*diff.Entry, rep *diff.Report, opts probe.Options, log func(string, ...any)) (*bisectProbeJSON, error) {
	var complete []*diff.Entry
	for _, e := range es {
		if e.Incomplete == "" {
			complete = append(complete, e)
		}
	}
	out := &bisectProbeJSON{DType: strings.ToLower(string(opts.DType)), Probed: []bisectProbed{}, FirstNonfiniteWeights: rep.FirstUnhealthy}
	places := map[int]*probePlaceJSON{}
	lo, hi, err := diff.SearchFirstBad(len(complete), func(i int) (bool, error) {
		e := complete[i]
		if log != nil {
			log("probing %s", e.Path)
		}
		r, err := probe.Run(e.Path, opts)
		if err != nil {
			return false, fmt.Errorf("probing %s: %w", e.Path, err)
		}
		p := bisectProbed{Path: e.Path, Step: e.Step, DType: strings.ToLower(string(r.DType)), Healthy: r.Healthy,
			FirstNonfinite: probePlace(r.FirstNonFinite)}
		places[i] = p.FirstNonfinite
		out.Probed = append(out.Probed, p)
		return r.Healthy, nil
	})
	if err != nil {
		return nil, err
	}
	if lo >= 0 {
		out.LastPassing = &diff.Ref{Path: complete[lo].Path, Step: complete[lo].Step}
	}
	if hi < len(complete) {
		out.FirstFailing = &diff.Ref{Path: complete[hi].Path, Step: complete[hi].Step}
	}
	out.Message = probeVerdictText(out, complete, hi, places)
	return out, nil
}

// recommendFromProbe moves the rollback recommendation back to the last
// checkpoint whose probe passes when the weights' verdict would roll back to
// one that already fails to sample: a model that cannot sample in its served
// dtype is no place to roll back to, however finite its weights.
func recommendFromProbe(rep *diff.Report, p *bisectProbeJSON) {
	rec := &rep.Recommendation
	if p.FirstFailing == nil || rec.RollbackTo != nil && rec.RollbackTo.Step < p.FirstFailing.Step {
		return
	}
	dt := p.DType
	if dt == "" {
		dt = "its served dtype"
	}
	was := "the weights alone give no rollback point"
	if rec.RollbackTo != nil {
		was = fmt.Sprintf("the weights alone point to %s, whose probe fails", formats.BaseOf(rec.RollbackTo.Path))
	}
	if p.LastPassing == nil {
		rec.RollbackTo = nil
		rec.Reason = fmt.Sprintf("no checkpoint of the run samples in %s: the probe fails from %s, the first complete checkpoint (%s)", dt, formats.BaseOf(p.FirstFailing.Path), was)
		return
	}
	to := *p.LastPassing
	rec.RollbackTo = &to
	rec.Reason = fmt.Sprintf("%s is the last checkpoint whose forward pass samples in %s; the probe fails from %s (%s)", formats.BaseOf(to.Path), dt, formats.BaseOf(p.FirstFailing.Path), was)
}

// probeVerdictText says where sampling starts failing and how that compares
// with the weights.
func probeVerdictText(p *bisectProbeJSON, complete []*diff.Entry, hi int, places map[int]*probePlaceJSON) string {
	name := func(r *diff.Ref) string { return formats.BaseOf(r.Path) }
	dt := p.DType
	if dt == "" {
		dt = "the served dtype"
	}
	w := p.FirstNonfiniteWeights
	switch {
	case p.FirstFailing == nil && w == nil:
		return fmt.Sprintf("every checkpoint samples in %s and its weights are finite", dt)
	case p.FirstFailing == nil:
		return fmt.Sprintf("the probe passes in %s on every checkpoint, yet %s has non-finite weights (the probe's tokens do not reach them, or the search assumed a failure persists)", dt, name(w))
	}
	where := ""
	if pl := places[hi]; pl != nil {
		where = fmt.Sprintf(" (first non-finite at %s)", probe.PlaceText(pl.Layer, 1<<30, pl.Where))
	}
	fail := fmt.Sprintf("%s sampling fails from %s%s", dt, name(p.FirstFailing), where)
	if p.LastPassing != nil {
		fail += fmt.Sprintf("; roll back to %s, the last checkpoint whose probe passes", name(p.LastPassing))
	}
	switch {
	case w == nil:
		return fmt.Sprintf("weights finite in every checkpoint, but %s", fail)
	case w.Step > p.FirstFailing.Step:
		before := "an earlier checkpoint"
		for i, e := range complete {
			if e.Path == w.Path && i > 0 {
				before = formats.BaseOf(complete[i-1].Path)
			}
		}
		return fmt.Sprintf("weights finite until %s, but %s", before, fail)
	case w.Path == p.FirstFailing.Path:
		return fmt.Sprintf("non-finite weights and failing sampling start together: %s", fail)
	}
	return fmt.Sprintf("%s; the weights are already non-finite from %s", fail, name(w))
}

// writeBisectProbeText prints the probe section of a bisect.
func writeBisectProbeText(w io.Writer, st styler, p *bisectProbeJSON) {
	fmt.Fprintf(w, "\n%s\n", st.Bold("PROBE"))
	t := textTable{header: []string{"STEP", "CHECKPOINT", "DTYPE", "PROBE", "FIRST NON-FINITE"}, right: map[int]bool{0: true}}
	rows := slices.Clone(p.Probed)
	slices.SortStableFunc(rows, func(a, b bisectProbed) int { return a.Step - b.Step })
	for _, c := range rows {
		v := cell{text: "passes", style: st.Green}
		if !c.Healthy {
			v = cell{text: "fails", style: st.Red}
		}
		where := "-"
		if f := c.FirstNonfinite; f != nil {
			where = probe.PlaceText(f.Layer, 1<<30, f.Where)
		}
		t.addCells(cell{text: fmt.Sprint(c.Step)}, cell{text: safeText(formats.BaseOf(c.Path))}, cell{text: c.DType}, v, cell{text: where})
	}
	t.write(w, st.Bold)
	style := st.BoldGreen
	if p.FirstFailing != nil || p.FirstNonfiniteWeights != nil {
		style = st.BoldRed
	}
	fmt.Fprintf(w, "%s\n", style(safeText(p.Message)))
}
