package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
)

// tensorRank orders scan results worst first.
const (
	rankError = iota
	rankWarning
	rankInfo
	rankSkipped
	rankHealthy
)

// rankedTensor is a tensor with the worst of its findings.
type rankedTensor struct {
	*inspect.TensorStats
	rank   int
	checks []string // distinct checks of its findings, in finding order
	order  int      // position in the checkpoint
}

// findingKey identifies a tensor for matching findings to it.
func findingKey(file, tensor string) string { return file + "\x00" + tensor }

// rankTensors pairs each tensor with its findings and sorts worst first: by
// severity, then by non-finite count (descending), then checkpoint order.
func rankTensors(r *inspect.Result) []rankedTensor {
	type worst struct {
		rank   int
		checks []string
	}
	byTensor := map[string]*worst{}
	for _, f := range r.Findings {
		if f.Tensor == "" {
			continue
		}
		rk := rankInfo
		switch f.Severity {
		case "error":
			rk = rankError
		case "warning":
			rk = rankWarning
		}
		k := findingKey(f.File, f.Tensor)
		w := byTensor[k]
		if w == nil {
			w = &worst{rank: rankHealthy}
			byTensor[k] = w
		}
		w.rank = min(w.rank, rk)
		dup := false
		for _, c := range w.checks {
			dup = dup || c == f.Check
		}
		if !dup {
			w.checks = append(w.checks, f.Check)
		}
	}
	out := make([]rankedTensor, len(r.Tensors))
	for i, t := range r.Tensors {
		rt := rankedTensor{TensorStats: t, rank: rankHealthy, order: i}
		if w := byTensor[findingKey(t.File, t.Name)]; w != nil {
			rt.rank, rt.checks = w.rank, w.checks
		}
		if t.Skipped != "" && rt.rank == rankHealthy {
			rt.rank = rankSkipped
		}
		out[i] = rt
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.rank != b.rank {
			return a.rank < b.rank
		}
		if a.NonFinite() != b.NonFinite() {
			return a.NonFinite() > b.NonFinite()
		}
		return a.order < b.order
	})
	return out
}

// statText formats a statistic for the table: 4 significant digits, "-" when
// there is no finite value.
func statText(have bool, v float64) string {
	if !have || math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// writeScanText prints the text view of one scan: a heading, the table of
// unhealthy tensors worst first (every tensor with all), the findings and a
// verdict line.
func writeScanText(w io.Writer, st styler, r *inspect.Result, all bool, elapsed time.Duration) {
	c := r.Checkpoint
	s := r.Summary
	speed := ""
	if elapsed >= 10*time.Millisecond {
		speed = fmt.Sprintf(" (%s/s)", formats.HumanBytes(int64(float64(s.Bytes)/elapsed.Seconds())))
	}
	fmt.Fprintf(w, "%s: %s, %s, %s, %s, scanned in %s%s\n", st.Bold(safeText(r.Path)), layoutText(c),
		plural(len(r.Files), "file"), formats.HumanBytes(s.Bytes), plural(s.Tensors, "tensor"), durationText(elapsed), speed)

	ranked := rankTensors(r)
	shown, healthy := 0, 0
	multi := len(r.Files) > 1
	header := []string{"TENSOR", "DTYPE", "SHAPE", "NAN", "+INF", "-INF", "ABSMAX", "MEAN", "STD", "L2"}
	if multi {
		header = append(header, "SHARD")
	}
	header = append(header, "STATUS")
	tt := textTable{header: header, right: map[int]bool{3: true, 4: true, 5: true, 6: true, 7: true, 8: true, 9: true}}
	short := fileShortener(c)
	for _, t := range ranked {
		if t.rank == rankHealthy {
			healthy++
			if !all {
				continue
			}
		}
		shown++
		have := t.Finite > 0 && t.Skipped == ""
		nonfinite := func(n uint64) cell {
			if n == 0 {
				return cell{text: "0"}
			}
			return cell{text: groupDigits(n), style: st.Red}
		}
		row := []cell{
			{text: safeText(t.Name)}, {text: string(t.DType)}, {text: shapeText(t.Shape)},
			nonfinite(t.NaN), nonfinite(t.PosInf), nonfinite(t.NegInf),
			{text: statText(have, t.AbsMax)}, {text: statText(have, t.Mean)}, {text: statText(have, t.Std())}, {text: statText(have, t.L2())},
		}
		if multi {
			row = append(row, cell{text: safeText(short(t.File))})
		}
		row = append(row, statusCell(st, t))
		tt.addCells(row...)
	}
	if shown > 0 {
		fmt.Fprintln(w)
		tt.write(w, st.Bold)
	}
	if healthy > 0 && !all {
		if shown > 0 {
			fmt.Fprintf(w, "… and %s (--all lists them)\n", plural(healthy, "healthy tensor"))
		} else {
			if healthy == 1 {
				fmt.Fprintf(w, "\nthe 1 tensor is healthy (--all lists it)\n")
			} else {
				fmt.Fprintf(w, "\nall %d tensors are healthy (--all lists them)\n", healthy)
			}
		}
	}

	if len(r.Findings) > 0 {
		fmt.Fprintf(w, "\n%s\n", st.Bold("FINDINGS"))
		writeFindings(w, st, r.Findings, short)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, scanVerdict(st, r))
}

// statusCell says what is wrong with a tensor in the table's last column.
func statusCell(st styler, t rankedTensor) cell {
	switch t.rank {
	case rankHealthy:
		return cell{text: "ok", style: st.Green}
	case rankSkipped:
		return cell{text: "not scanned: " + safeText(t.Skipped), style: st.Red}
	}
	sev := map[int]string{rankError: "error", rankWarning: "warning", rankInfo: "info"}[t.rank]
	text := safeText(strings.Join(t.checks, ", "))
	if t.Skipped != "" {
		text += "; not scanned: " + safeText(t.Skipped)
	}
	return cell{text: text, style: func(s string) string { return st.Severity(sev, s) }}
}

// nonFiniteTotals sums NaN, +Inf and -Inf over a scan's tensors.
func nonFiniteTotals(r *inspect.Result) (nan, posinf, neginf uint64) {
	for _, t := range r.Tensors {
		nan += t.NaN
		posinf += t.PosInf
		neginf += t.NegInf
	}
	return nan, posinf, neginf
}

// scanVerdictText is the verdict of a scan in words, without styling: what is
// wrong (non-finite values, malformed files) and how many errors and warnings.
func scanVerdictText(r *inspect.Result) (healthy bool, text string) {
	s := r.Summary
	var parts []string
	if s.NonFiniteTensors > 0 {
		nan, pos, neg := nonFiniteTotals(r)
		parts = append(parts, fmt.Sprintf("%d of %s hold non-finite values (%s NaN, %s +Inf, %s -Inf)",
			s.NonFiniteTensors, plural(s.Tensors, "tensor"), groupDigits(nan), groupDigits(pos), groupDigits(neg)))
	}
	counts := findingCounts(r.Findings)
	if !s.Healthy {
		if counts != "" {
			parts = append(parts, counts)
		}
		return false, strings.Join(parts, "; ")
	}
	text = fmt.Sprintf("%s, %s, every value finite", plural(s.Tensors, "tensor"), formats.HumanBytes(s.Bytes))
	if counts != "" {
		text += "; " + counts
	} else {
		text += ", no findings"
	}
	return true, text
}

// scanVerdict is the last line of the text view.
func scanVerdict(st styler, r *inspect.Result) string {
	healthy, text := scanVerdictText(r)
	if healthy {
		return st.BoldGreen("HEALTHY") + ": " + text
	}
	return st.BoldRed("UNHEALTHY") + ": " + text
}
