package inspect

import (
	"errors"
	"fmt"
	"sort"

	"github.com/ckpt-tool/ckpt/formats"
)

// FormatFindings turns the format problems recorded when a checkpoint was
// opened into findings (check "incomplete" for a trainer checkpoint caught
// mid-save, "format" for the rest), and warns when the checkpoint holds no tensor.
func FormatFindings(c *formats.Checkpoint) []Finding {
	var out []Finding
	for _, p := range c.AllProblems() {
		check := CheckFormat
		if errors.Is(p.Err, formats.ErrIncomplete) {
			check = CheckIncomplete // an unfinished save, not corruption
		}
		f := Finding{Severity: string(p.Severity), Check: check, Tensor: p.Err.Tensor, File: p.Err.File, Message: p.Err.Error()}
		if errors.Is(p.Err, formats.ErrPickle) {
			f.Check, f.Global = CheckPickle, p.Err.Global
			if p.Err.Offset >= 0 {
				off := p.Err.Offset
				f.Offset = &off
			}
		}
		out = append(out, f)
	}
	if len(c.Tensors) == 0 && len(c.AllFileErrors()) == 0 {
		out = append(out, Finding{Severity: string(formats.SevWarning), Check: CheckEmpty, File: c.Path,
			Message: "the checkpoint holds no tensors"})
	}
	return out
}

// nonFiniteFinding reports NaN/Inf values in a tensor, or nil.
func nonFiniteFinding(t *TensorStats) *Finding {
	if t.NonFinite() == 0 && t.BadScales == 0 {
		return nil
	}
	what := "values" // a complex tensor is counted per element: a non-finite part makes it count once
	if t.DType.Kind() == formats.KindComplex {
		what = "complex elements"
	}
	msg := fmt.Sprintf("%d of %d %s are not finite (NaN %d, +Inf %d, -Inf %d); first at index %d %v",
		t.NonFinite(), t.Count, what, t.NaN, t.PosInf, t.NegInf, t.FirstBad, t.FirstBadCoords)
	if t.BadScales > 0 {
		_, tr, _ := t.DType.Block()
		msg += fmt.Sprintf("; %d of %d %s blocks have a non-finite scale", t.BadScales, t.Count/uint64(max(tr.BlockElems, 1)), t.DType)
		if t.Undecoded > 0 {
			msg = fmt.Sprintf("%d of %d %s blocks have a non-finite scale, so all their values are NaN or infinite (%s values are not decoded: only block scales are checked)",
				t.BadScales, t.Count/uint64(max(tr.BlockElems, 1)), t.DType, t.DType)
		}
	}
	return &Finding{Severity: "error", Check: CheckNonFinite, Tensor: t.Name, File: t.File, Message: msg}
}

var severityRank = map[string]int{"error": 0, "warning": 1, "info": 2}

// SortFindings orders findings worst first, then by file and tensor, stably.
func SortFindings(f []Finding) {
	sort.SliceStable(f, func(i, j int) bool {
		if severityRank[f[i].Severity] != severityRank[f[j].Severity] {
			return severityRank[f[i].Severity] < severityRank[f[j].Severity]
		}
		if f[i].File != f[j].File {
			return f[i].File < f[j].File
		}
		return f[i].Tensor < f[j].Tensor
	})
}

// summarize fills r.Summary from its tensors and findings.
func (r *Result) summarize() {
	s := Summary{Tensors: len(r.Tensors)}
	for _, f := range r.Files {
		s.Bytes += f.Bytes
	}
	for _, t := range r.Tensors {
		if t.NonFinite() > 0 || t.BadScales > 0 {
			s.NonFiniteTensors++
		}
	}
	for _, f := range r.Findings {
		switch f.Severity {
		case "error":
			s.Errors++
		case "warning":
			s.Warnings++
		}
	}
	s.Healthy = s.Errors == 0
	r.Summary = s
}
