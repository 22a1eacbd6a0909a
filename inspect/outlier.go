package inspect

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/ckpt-tool/ckpt/formats"
)

// ValueFindings applies the rules of th (defaults filled in for zero fields)
// to scanned tensors and returns the outlier findings: absolute signatures
// (huge values, all-zero weight matrices, values that overflow fp16) and
// robust outliers among the tensors of one role across layers. target is the
// dtype the model will be served in ("" when unknown); F16 makes fp16
// overflow an error.
func ValueFindings(tensors []*TensorStats, th Thresholds, target formats.DType) []Finding {
	th = th.withDefaults()
	var out []Finding
	for _, t := range tensors {
		out = append(out, absoluteFindings(t, th, target)...)
	}
	return append(out, roleFindings(tensors, th)...)
}

// checkable reports whether t holds scanned floating-point values the value
// rules apply to (not F8_E8M0, which holds power-of-two scales); a ggml block
// type's dequantized values count.
func checkable(t *TensorStats) bool {
	k := t.DType.Kind()
	return t.Skipped == "" && (k == formats.KindFloat || k == formats.KindBlock) && t.DType != formats.F8_E8M0 && t.Finite > 0
}

// isBias reports whether a tensor name's last component names a bias.
func isBias(name string) bool {
	last := name[strings.LastIndex(name, ".")+1:]
	return strings.Contains(strings.ToLower(last), "bias")
}

func outlierFinding(sev formats.Severity, t *TensorStats, format string, args ...any) Finding {
	return Finding{Severity: string(sev), Check: CheckOutlier, Tensor: t.Name, File: t.File, Message: fmt.Sprintf(format, args...)}
}

// absoluteFindings are the rules that need no comparison with other tensors.
func absoluteFindings(t *TensorStats, th Thresholds, target formats.DType) []Finding {
	if !checkable(t) {
		return nil
	}
	var out []Finding
	switch {
	case t.AbsMax > th.HugeAbs:
		out = append(out, outlierFinding(formats.SevError, t,
			"largest |value| is %.3g (above %.3g): no trained weight gets there; uninitialised memory or a flipped exponent bit does", t.AbsMax, th.HugeAbs))
	case t.AbsMax > fp16Max && t.DType.MaxFinite() > fp16Max:
		sev, why := formats.SevWarning, "would overflow to Inf if the model is served in fp16"
		if target == formats.F16 {
			sev, why = formats.SevError, "overflows to Inf in fp16, the target dtype"
		}
		out = append(out, outlierFinding(sev, t, "largest |value| is %.6g, above the fp16 maximum 65504: %s", t.AbsMax, why))
	}
	if len(t.Shape) == 2 && t.Numel > 1 && t.Zeros == t.Count && !isBias(t.Name) {
		sev := formats.SevWarning
		if th.ZeroMatrixError {
			sev = formats.SevError
		}
		out = append(out, outlierFinding(sev, t,
			"every value of this %dx%d weight matrix is zero: expected only for a LoRA B matrix before training or a zero-initialised projection; otherwise the weights were lost", t.Shape[0], t.Shape[1]))
	}
	return out
}

// roleMember is one tensor in a role comparison.
type roleMember struct {
	t        *TensorStats
	rms, abs float64 // ln of the RMS and of the largest |value|
}

// roleFindings compares the tensors of each role (same role name, same shape)
// by robust z-scores of ln(RMS) and ln(absmax): median and MAD over the
// members, so that one bad member cannot hide itself by moving the yardstick.
func roleFindings(tensors []*TensorStats, th Thresholds) []Finding {
	groups := map[string][]roleMember{}
	var keys []string
	for _, t := range tensors {
		if !checkable(t) || t.NonFinite() > 0 || t.Finite < uint64(th.RoleMinElements) || t.SumSq == 0 || t.AbsMax == 0 {
			continue
		}
		role, ok := formats.Role(t.Name)
		if !ok {
			continue
		}
		key := fmt.Sprintf("%s %v", role, t.Shape)
		if _, seen := groups[key]; !seen {
			keys = append(keys, key)
		}
		rms := math.Sqrt(t.SumSq / float64(t.Finite))
		groups[key] = append(groups[key], roleMember{t: t, rms: math.Log(rms), abs: math.Log(t.AbsMax)})
	}
	var out []Finding
	for _, key := range keys {
		g := groups[key]
		if len(g) < th.RoleMinMembers {
			continue
		}
		rmsMed, rmsSpread := robust(g, func(m roleMember) float64 { return m.rms }, th.MinSpread)
		absMed, absSpread := robust(g, func(m roleMember) float64 { return m.abs }, th.MinSpread)
		role, _ := formats.Role(g[0].t.Name)
		for _, m := range g {
			sev, what := judge(m.rms, rmsMed, rmsSpread, th, "RMS")
			sev2, what2 := judge(m.abs, absMed, absSpread, th, "largest |value|")
			if rank(sev2) < rank(sev) {
				sev = sev2
			}
			if sev == "" {
				continue
			}
			msg := strings.Join(nonEmpty(what, what2), "; ")
			out = append(out, outlierFinding(sev, m.t, "%s, among the %d tensors of role %s", msg, len(g), role))
		}
	}
	return out
}

// robust returns the median of a metric over the members and its robust
// spread 1.4826 × MAD (the standard deviation for normal data), floored.
func robust(g []roleMember, metric func(roleMember) float64, floor float64) (median, spread float64) {
	v := make([]float64, len(g))
	for i, m := range g {
		v[i] = metric(m)
	}
	median = medianOf(v)
	for i := range v {
		v[i] = math.Abs(v[i] - median)
	}
	return median, math.Max(1.4826*medianOf(v), floor)
}

// medianOf sorts v and returns its median.
func medianOf(v []float64) float64 {
	sort.Float64s(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// judge rates one member's ln-metric x against its role: "" when normal, else
// a severity and a sentence.
func judge(x, median, spread float64, th Thresholds, name string) (formats.Severity, string) {
	d := x - median
	z := math.Abs(d) / spread
	ratio := math.Exp(math.Abs(d))
	if z < th.OutlierWarnZ || ratio < th.OutlierWarnRatio {
		return "", ""
	}
	dir := "above"
	sev := formats.SevWarning
	if d < 0 {
		dir = "below"
	} else if z >= th.OutlierErrorZ && ratio >= th.OutlierErrorRatio {
		sev = formats.SevError
	}
	return sev, fmt.Sprintf("%s %.4g is %.3gx %s the median %.4g of its role (robust z %.1f)", name, math.Exp(x), ratio, dir, math.Exp(median), z)
}

func rank(s formats.Severity) int {
	switch s {
	case formats.SevError:
		return 0
	case formats.SevWarning:
		return 1
	case formats.SevInfo:
		return 2
	}
	return 3
}

func nonEmpty(s ...string) []string {
	var out []string
	for _, x := range s {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}
