package main

import (
	_ "embed"
	"fmt"
	"html"
	"html/template"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ckpt-tool/ckpt/diff"
	"github.com/ckpt-tool/ckpt/formats"
)

// The HTML report of ckpt bisect: one self-contained page (inline CSS and SVG,
// no external asset, a Content-Security-Policy that forbids loading any) with
// the training log's curves, the update heatmap and the culprits. Every string
// from the files goes through html/template or esc: tensor names are hostile.

//go:embed report.html
var reportTemplateText string

var reportTemplate = template.Must(template.New("report").Parse(reportTemplateText))

// writeReportFile renders the report and writes it atomically to path.
func writeReportFile(path string, rep *diff.Report, overwrite bool) error {
	page := buildReportPage(rep)
	f, err := formats.CreateAtomic(path, overwrite)
	if err != nil {
		return err
	}
	if err := reportTemplate.Execute(f, page); err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}

type reportRow struct {
	Step                               int
	Name, Verdict, Class, Scan, Update string
	Notes                              string
}

type reportMove struct{ Name, Value string }

type reportPage struct {
	Run, Counts, Verdict, VerdictClass string
	Rollback, Reason                   string
	Resume                             string // where to resume training, and why not from newer checkpoints
	Advice                             []string
	Charts                             []template.HTML
	DriftChart, Heatmap                template.HTML
	UpdateChart                        template.HTML // largest predicted Adam update per checkpoint
	Onset                              string
	TopMoves                           []reportMove
	UnhealthyName                      string
	Culprits                           []diff.Culprit
	MoreCulprits                       int
	Checkpoints                        []reportRow
	Events                             []diff.Event
	Notes                              []string
	Version                            string
}

// reportCulprits bounds the culprit table.
const reportCulprits = 50

func buildReportPage(rep *diff.Report) reportPage {
	v := newBisectView(rep)
	p := reportPage{Version: version, Reason: v.Reason, Notes: v.Notes, Advice: v.Advice, Rollback: v.RollbackP, Events: v.Events, Run: v.Run}
	p.Resume = safeText(rep.Recommendation.ResumeReason)
	p.Counts = fmt.Sprintf("%s, %d complete, %d scanned (budget %d)", plural(v.Total, "checkpoint"), v.Complete, len(rep.Scanned), rep.ScanBudget)
	switch {
	case v.Healthy:
		p.VerdictClass = "healthy"
		p.Verdict = "Every checkpoint is healthy: the newest scans clean."
	case v.LastGood == nil:
		p.VerdictClass = "unhealthy"
		p.Verdict = fmt.Sprintf("Unhealthy from the oldest checkpoint on (%s).", v.FirstBad.Name)
	default:
		p.VerdictClass = "unhealthy"
		p.Verdict = fmt.Sprintf("First unhealthy checkpoint: %s (step %d). Last healthy: %s (step %d).",
			v.FirstBad.Name, v.FirstBad.Step, v.LastGood.Name, v.LastGood.Step)
		p.UnhealthyName = v.FirstBad.Name
	}
	p.Culprits = v.Culprits
	if len(p.Culprits) > reportCulprits {
		p.Culprits, p.MoreCulprits = p.Culprits[:reportCulprits], len(p.Culprits)-reportCulprits
	}
	for _, r := range v.Rows {
		p.Checkpoints = append(p.Checkpoints, reportRow{Step: r.Step, Name: r.Name, Verdict: r.Verdict, Class: r.Class, Scan: r.Scan, Update: r.Update,
			Notes: strings.Join(r.Notes, "; ")})
	}
	if o := v.Onset; o != nil {
		p.Onset = fmt.Sprintf("between %s and %s (steps %d → %d) the relative update is %s, %s× the median (%s) of the intervals before.",
			o.From.Name, o.To.Name, o.From.Step, o.To.Step, o.Update, o.Factor, o.Baseline)
		for _, m := range o.TopTensors {
			p.TopMoves = append(p.TopMoves, reportMove{m.Name, relText(m.RelUpdate)})
		}
	} else if v.NoOnset != "" {
		p.Onset = v.NoOnset + "."
	}
	cx := newChartContext(rep)
	if tl := rep.TrainingLog; tl != nil && tl.State != nil {
		for _, s := range []struct {
			title, key, color string
			log               bool
		}{{"loss", "loss", "#3f51b5", false}, {"grad_norm (log scale)", "grad_norm", "#8e24aa", true}, {"learning rate", "learning_rate", "#00897b", false}} {
			var pts []chartPoint
			for _, e := range tl.State.LogHistory {
				var v *float64
				switch s.key {
				case "loss":
					v = e.Loss
				case "grad_norm":
					v = e.GradNorm
				default:
					v = e.LearningRate
				}
				if v != nil {
					pts = append(pts, chartPoint{float64(e.Step), *v})
				}
			}
			if len(pts) > 0 {
				p.Charts = append(p.Charts, template.HTML(cx.lineChart(s.title, pts, s.log, s.color)))
			}
		}
	}
	if len(rep.Drift) > 0 {
		var pts []chartPoint
		for _, iv := range rep.Drift {
			v := math.NaN()
			if iv.RelUpdate != nil {
				v = *iv.RelUpdate
			}
			pts = append(pts, chartPoint{float64(iv.ToStep), v})
		}
		p.DriftChart = template.HTML(cx.lineChart("relative update since the previous checkpoint (log scale)", pts, true, "#d84315"))
		p.Heatmap = template.HTML(heatmap(rep))
	}
	var upd []chartPoint
	for _, c := range rep.Checkpoints {
		if c.MaxUpdate != nil {
			upd = append(upd, chartPoint{float64(c.Step), *c.MaxUpdate})
		}
	}
	if len(upd) > 0 {
		p.UpdateChart = template.HTML(cx.lineChart("largest predicted Adam update ‖Δ‖/‖θ‖ of the optimizer state (log scale)", upd, true, "#6a1b9a"))
	}
	return p
}

// commonDir is the longest common directory of paths.
func commonDir(dirs []string) string {
	if len(dirs) == 0 {
		return ""
	}
	c := dirs[0]
	for _, d := range dirs[1:] {
		for c != d && !strings.HasPrefix(d, c+string(filepath.Separator)) {
			parent := filepath.Dir(c)
			if parent == c {
				return c
			}
			c = parent
		}
	}
	return c
}

// esc makes file-derived text safe inside SVG markup.
func esc(s string) string { return html.EscapeString(safeText(s)) }

type chartPoint struct{ x, y float64 }

// chartContext is what every chart of a report shares: the step axis and the
// checkpoint marks.
type chartContext struct {
	xmax        float64
	checkpoints []diff.CheckpointVerdict
	onset       *diff.Onset
}

func newChartContext(rep *diff.Report) *chartContext {
	cx := &chartContext{checkpoints: rep.Checkpoints, onset: rep.DriftOnset}
	for _, c := range rep.Checkpoints {
		cx.xmax = math.Max(cx.xmax, float64(c.Step))
	}
	if tl := rep.TrainingLog; tl != nil && tl.State != nil {
		for _, e := range tl.State.LogHistory {
			cx.xmax = math.Max(cx.xmax, float64(e.Step))
		}
	}
	if cx.xmax <= 0 {
		cx.xmax = 1
	}
	return cx
}

const (
	chartW, chartH                = 1060, 190
	padL, padR, padT, padB        = 70, 20, 24, 28
	plotW, plotH                  = chartW - padL - padR, chartH - padT - padB
	colorHealthy, colorUnhealthy  = "#2e7d32", "#c62828"
	colorNotScanned, colorSkipped = "#b0b7c3", "#f0a030"
	colorOnset                    = "#ffe0b2"
)

func verdictColor(c diff.CheckpointVerdict) string {
	switch {
	case c.Incomplete != "":
		return colorSkipped
	case c.Verdict == diff.Healthy:
		return colorHealthy
	case c.Verdict == diff.Unhealthy:
		return colorUnhealthy
	}
	return colorNotScanned
}

// niceTicks are about n round values covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	if !(hi > lo) {
		return []float64{lo}
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		out = append(out, v)
	}
	return out
}

func tickText(v float64) string {
	if v == 0 {
		return "0"
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e7 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// lineChart draws one series over steps: a line through the finite values
// (broken at non-finite ones, which are marked with red triangles at the top),
// the checkpoints as vertical lines coloured by verdict and the drift onset
// interval shaded.
func (cx *chartContext) lineChart(title string, pts []chartPoint, logY bool, color string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`, chartW, chartH, chartW, chartH, esc(title))
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#fff"/>`, chartW, chartH)
	fmt.Fprintf(&b, `<text x="%d" y="15" font-size="13" font-weight="600" fill="#1d2330">%s</text>`, padL, esc(title))
	ylo, yhi := math.Inf(1), math.Inf(-1)
	for _, p := range pts {
		if !finiteNum(p.y) || (logY && p.y <= 0) {
			continue
		}
		y := p.y
		if logY {
			y = math.Log10(y)
		}
		ylo, yhi = math.Min(ylo, y), math.Max(yhi, y)
	}
	if math.IsInf(ylo, 1) {
		ylo, yhi = 0, 1
	}
	if yhi-ylo < 1e-12 {
		ylo, yhi = ylo-0.5, yhi+0.5
	}
	if !logY && ylo > 0 && ylo < 0.3*yhi {
		ylo = 0
	}
	pad := (yhi - ylo) * 0.06
	ylo, yhi = ylo-pad, yhi+pad
	xs := func(x float64) float64 { return padL + x/cx.xmax*plotW }
	ys := func(y float64) float64 { return padT + (1-(y-ylo)/(yhi-ylo))*plotH }
	// Onset band, checkpoints, axes.
	if o := cx.onset; o != nil {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>drift onset: steps %d to %d</title></rect>`,
			xs(float64(o.FromStep)), padT, math.Max(1, xs(float64(o.ToStep))-xs(float64(o.FromStep))), plotH, colorOnset, o.FromStep, o.ToStep)
	}
	for _, c := range cx.checkpoints {
		x := xs(float64(c.Step))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="1.5" stroke-dasharray="3,2"><title>%s: %s</title></line>`,
			x, padT, x, padT+plotH, verdictColor(c), esc(filepath.Base(c.Path)), esc(string(c.Verdict)))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#9aa3b2"/>`, padL, padT, plotW, plotH)
	if logY {
		for e := math.Ceil(ylo); e <= yhi; e++ {
			y := ys(e)
			fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eceff4"/><text x="%d" y="%.1f" font-size="11" text-anchor="end" fill="#5b6577">%s</text>`,
				padL, y, padL+plotW, y, padL-6, y+4, tickText(math.Pow(10, e)))
		}
	} else {
		for _, v := range niceTicks(ylo, yhi, 4) {
			y := ys(v)
			fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eceff4"/><text x="%d" y="%.1f" font-size="11" text-anchor="end" fill="#5b6577">%s</text>`,
				padL, y, padL+plotW, y, padL-6, y+4, tickText(v))
		}
	}
	for _, v := range niceTicks(0, cx.xmax, 8) {
		x := xs(v)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11" text-anchor="middle" fill="#5b6577">%s</text>`, x, chartH-8, tickText(v))
	}
	// The series: polylines through runs of finite values.
	var run []string
	flush := func() {
		if len(run) > 1 {
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.6" points="%s"/>`, color, strings.Join(run, " "))
		} else if len(run) == 1 {
			xy := strings.Split(run[0], ",")
			fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="2" fill="%s"/>`, xy[0], xy[1], color)
		}
		run = run[:0]
	}
	for _, p := range pts {
		if !finiteNum(p.y) || (logY && p.y <= 0) {
			flush()
			if !finiteNum(p.y) {
				x := xs(p.x)
				fmt.Fprintf(&b, `<path d="M%.1f %d l4 7 h-8 z" fill="%s"><title>step %.0f: %s</title></path>`, x, padT+1, colorUnhealthy, p.x, esc(diff.PyFloat(p.y)))
			}
			continue
		}
		y := p.y
		if logY {
			y = math.Log10(y)
		}
		run = append(run, fmt.Sprintf("%.1f,%.1f", xs(p.x), ys(y)))
	}
	flush()
	b.WriteString(`</svg>`)
	return b.String()
}

func finiteNum(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// viridis interpolates a perceptually even colour ramp at t in [0, 1].
func viridis(t float64) string {
	stops := [][3]float64{{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}}
	t = math.Max(0, math.Min(1, t))
	f := t * float64(len(stops)-1)
	i := int(math.Min(f, float64(len(stops)-2)))
	u := f - float64(i)
	c := func(k int) int { return int(math.Round(stops[i][k] + u*(stops[i+1][k]-stops[i][k]))) }
	return fmt.Sprintf("#%02x%02x%02x", c(0), c(1), c(2))
}

// heatmap draws layers (rows) × drift intervals (columns), coloured by the log
// of the layer's relative update.
func heatmap(rep *diff.Report) string {
	var rows []string
	seen := map[string]bool{}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, iv := range rep.Drift {
		for _, m := range iv.Layers {
			if !seen[m.Name] {
				seen[m.Name] = true
				rows = append(rows, m.Name)
			}
			if m.RelUpdate != nil && *m.RelUpdate > 0 {
				l := math.Log10(*m.RelUpdate)
				lo, hi = math.Min(lo, l), math.Max(hi, l)
			}
		}
	}
	if len(rows) == 0 {
		return ""
	}
	if math.IsInf(lo, 1) {
		lo, hi = 0, 1
	}
	if hi-lo < 1e-9 {
		hi = lo + 1
	}
	label := func(k string) string {
		if k == "" {
			return "(outside layers)"
		}
		return k
	}
	labelW := 40
	for _, r := range rows {
		labelW = max(labelW, 7*textWidth(label(r))+10)
	}
	labelW = min(labelW, 300)
	cols := len(rep.Drift)
	cellW := math.Max(8, math.Min(60, float64(chartW-labelW-90)/float64(cols)))
	cellH := 14.0
	w := float64(labelW) + cellW*float64(cols) + 90
	h := 30 + cellH*float64(len(rows)) + 40
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-label="update heatmap">`, w, h, w, h)
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%.0f" height="%.0f" fill="#fff"/>`, w, h)
	index := map[string]int{}
	for i, r := range rows {
		index[r] = i
		y := 30 + cellH*float64(i)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="11" text-anchor="end" fill="#1d2330">%s</text>`, labelW-6, y+cellH-3, esc(truncateText(label(r), 42)))
	}
	for j, iv := range rep.Drift {
		x := float64(labelW) + cellW*float64(j)
		if cols <= 30 || j%((cols+29)/30) == 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="22" font-size="10" text-anchor="middle" fill="#5b6577">%d</text>`, x+cellW/2, iv.ToStep)
		}
		for _, m := range iv.Layers {
			y := 30 + cellH*float64(index[m.Name])
			fill, what := "#d5d9e0", "not defined"
			if m.RelUpdate != nil {
				what = relText(m.RelUpdate)
				t := 0.0
				if *m.RelUpdate > 0 {
					t = (math.Log10(*m.RelUpdate) - lo) / (hi - lo)
				}
				fill = viridis(t)
			}
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" stroke="#fff" stroke-width="0.5"><title>%s, steps %d→%d: %s</title></rect>`,
				x, y, cellW, cellH, fill, esc(label(m.Name)), iv.FromStep, iv.ToStep, esc(what))
		}
		if o := rep.DriftOnset; o != nil && o.ToStep == iv.ToStep {
			fmt.Fprintf(&b, `<rect x="%.1f" y="29" width="%.1f" height="%.1f" fill="none" stroke="#d84315" stroke-width="2"><title>drift onset</title></rect>`,
				x, cellW, cellH*float64(len(rows))+2)
		}
	}
	// Colour scale.
	ly := 30 + cellH*float64(len(rows)) + 14
	for k := 0; k < 10; k++ {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="16" height="10" fill="%s"/>`, float64(labelW)+16*float64(k), ly, viridis(float64(k)/9))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="11" text-anchor="end" fill="#5b6577">%s</text>`, labelW-6, ly+9, tickText(math.Pow(10, lo)))
	fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="11" fill="#5b6577">%s (relative update)</text>`, labelW+166, ly+9, tickText(math.Pow(10, hi)))
	b.WriteString(`</svg>`)
	return b.String()
}
