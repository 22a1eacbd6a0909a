package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ckpt-tool/ckpt/diff"
)

// bisectView is what the text output and the HTML report of a bisect show,
// worked out once from the report: short checkpoint names, the table rows and
// their notes, the verdict, the drift onset and the culprits. Every string
// from the files has been through safeText; the renderers only lay it out.
type bisectView struct {
	rep      *diff.Report
	Run      string // the directory common to the checkpoints
	Total    int    // checkpoints
	Complete int    // checkpoints not skipped as incomplete
	Rows     []bisectRow

	// The verdict: Healthy when no checkpoint is unhealthy, else FirstBad
	// (and LastGood unless the oldest is already unhealthy).
	Healthy            bool
	FirstBad, LastGood *bisectRef
	Newest             string // the newest checkpoint's name, for a healthy run

	Onset     *bisectOnset
	NoOnset   string // "no interval's update jumps above N× ..." when drift was measured without an onset
	Culprits  []diff.Culprit
	Events    []diff.Event // training-log events
	Rollback  *bisectRef
	RollbackP string // the rollback checkpoint's full path
	Reason    string
	Advice    []string
	Notes     []string
}

// bisectRef is a checkpoint as shown.
type bisectRef struct {
	Name string
	Step int
}

// bisectRow is one checkpoint of the table.
type bisectRow struct {
	Step    int
	Name    string
	Verdict string // healthy, unhealthy, not scanned, skipped
	Class   string // healthy, unhealthy, not_scanned, skipped
	Scan    string // "#2" for the second scanned
	Update  string // relative update since the previous checkpoint
	Notes   []string
}

// bisectOnset is the drift onset as shown.
type bisectOnset struct {
	From, To         bisectRef
	Update, Baseline string // relative updates
	Factor           string // Update / Baseline ("∞" after a zero baseline)
	TopTensors       []diff.Move
	TopLayers        []diff.Move
}

func newBisectView(rep *diff.Report) *bisectView {
	name := shortNamer(rep)
	ref := func(r *diff.Ref) *bisectRef {
		if r == nil {
			return nil
		}
		return &bisectRef{Name: safeText(name(r.Path)), Step: r.Step}
	}
	v := &bisectView{rep: rep, Total: len(rep.Checkpoints), Reason: safeText(rep.Recommendation.Reason),
		FirstBad: ref(rep.FirstUnhealthy), LastGood: ref(rep.LastHealthy), Rollback: ref(rep.Recommendation.RollbackTo)}
	v.Healthy = rep.FirstUnhealthy == nil
	if v.Healthy && v.LastGood != nil {
		v.Newest = v.LastGood.Name
	}
	if r := rep.Recommendation.RollbackTo; r != nil {
		v.RollbackP = safeText(r.Path)
	}
	var dirs []string
	for _, c := range rep.Checkpoints {
		dirs = append(dirs, filepath.Dir(c.Path))
		if c.Incomplete == "" {
			v.Complete++
		}
	}
	v.Run = safeText(commonDir(dirs))

	update := map[int]*diff.Interval{}
	for i := range rep.Drift {
		update[rep.Drift[i].ToStep] = &rep.Drift[i]
	}
	events := map[int][]string{}
	if tl := rep.TrainingLog; tl != nil {
		for _, e := range tl.Events {
			if e.CheckpointAfter != nil {
				events[*e.CheckpointAfter] = append(events[*e.CheckpointAfter], fmt.Sprintf("%s at %d", e.Kind, e.Step))
			}
			e.Message = safeText(e.Message)
			v.Events = append(v.Events, e)
		}
	}
	for _, c := range rep.Checkpoints {
		row := bisectRow{Step: c.Step, Name: safeText(name(c.Path)), Verdict: strings.ReplaceAll(string(c.Verdict), "_", " "), Class: string(c.Verdict)}
		if c.Incomplete != "" {
			row.Verdict, row.Class = "skipped", "skipped"
			row.Notes = append(row.Notes, safeText(c.Incomplete))
		}
		if c.ScanOrder > 0 {
			row.Scan = "#" + strconv.Itoa(c.ScanOrder)
		}
		if iv := update[c.Step]; iv != nil {
			row.Update = relText(iv.RelUpdate)
		}
		if o := rep.DriftOnset; o != nil && o.ToStep == c.Step {
			row.Notes = append(row.Notes, fmt.Sprintf("drift onset (%s× the earlier updates)", o.FactorText()))
		}
		if fu := rep.FirstUnhealthy; fu != nil && fu.Path == c.Path {
			row.Notes = append(row.Notes, "first unhealthy")
		}
		if lh := rep.LastHealthy; lh != nil && lh.Path == c.Path {
			row.Notes = append(row.Notes, "last healthy")
		}
		if r := rep.Recommendation.RollbackTo; r != nil && r.Path == c.Path {
			row.Notes = append(row.Notes, "roll back here")
		}
		row.Notes = append(row.Notes, events[c.Step]...)
		if c.Verdict == diff.Unhealthy && c.Errors > 0 {
			row.Notes = append(row.Notes, plural(c.Errors, "error finding"))
		}
		v.Rows = append(v.Rows, row)
	}

	if o := rep.DriftOnset; o != nil {
		on := &bisectOnset{From: bisectRef{safeText(name(o.FromPath)), o.FromStep}, To: bisectRef{safeText(name(o.ToPath)), o.ToStep},
			Update: relText(&o.RelUpdate), Baseline: relText(&o.Baseline), Factor: o.FactorText()}
		if iv := update[o.ToStep]; iv != nil {
			on.TopTensors, on.TopLayers = safeMoves(iv.TopTensors), safeMoves(iv.TopLayers)
		}
		v.Onset = on
	} else if len(rep.Drift) > 0 {
		v.NoOnset = fmt.Sprintf("no interval's update jumps above %s× the median of the ones before", rep.OnsetFactorText())
	}
	for _, c := range rep.Culprits {
		v.Culprits = append(v.Culprits, diff.Culprit{Tensor: safeText(c.Tensor), File: safeText(c.File), Layer: safeText(c.Layer), Check: safeText(c.Check), Message: safeText(c.Message)})
	}
	for _, a := range rep.Recommendation.Advice {
		v.Advice = append(v.Advice, safeText(a.Message))
	}
	for _, n := range rep.Notes {
		v.Notes = append(v.Notes, safeText(n))
	}
	return v
}

func safeMoves(ms []diff.Move) []diff.Move {
	out := make([]diff.Move, len(ms))
	for i, m := range ms {
		out[i] = diff.Move{Name: safeText(m.Name), RelUpdate: m.RelUpdate}
	}
	return out
}

func movesText(ms []diff.Move) string {
	var parts []string
	for _, m := range ms {
		parts = append(parts, fmt.Sprintf("%s %s", m.Name, relText(m.RelUpdate)))
	}
	return strings.Join(parts, ", ")
}
