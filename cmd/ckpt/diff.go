package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/ckpt-tool/ckpt/diff"
	"github.com/ckpt-tool/ckpt/formats"
)

// ckpt diff: per-tensor change between two checkpoints, with diff(1)'s exit
// statuses (0 identical, 1 different, 2 trouble).

func init() {
	register(command{
		name:    "diff",
		summary: "per-tensor change between two checkpoints (0 identical, 1 different)",
		run:     runDiffCmd,
	})
}

// diffOptions are the flags of ckpt diff.
type diffOptions struct {
	JSON       bool
	Markdown   bool
	All        bool // list identical tensors too
	Top        int  // changed tensors listed (0: all)
	Layers     bool // print the per-layer table in text output
	Workers    int
	Color      string
	NoProgress bool
}

func runDiffCmd(args []string, stdout, stderr io.Writer) error {
	var o diffOptions
	fs := newFlagSet("diff", "diff [flags] A B", stderr)
	fs.BoolVar(&o.JSON, "json", false, "print one JSON object (the contract in the README)")
	fs.BoolVar(&o.Markdown, "markdown", false, "print a Markdown report for a pull-request comment")
	fs.BoolVar(&o.All, "all", false, "list every tensor, identical ones included")
	fs.IntVar(&o.Top, "top", 50, "list at most this many changed tensors, largest change first (0: all)")
	fs.BoolVar(&o.Layers, "layers", true, "print the per-layer aggregate table")
	fs.IntVarP(&o.Workers, "workers", "j", 0, "chunks compared in parallel by this many goroutines (0: one per CPU)")
	fs.StringVar(&o.Color, "color", "auto", "colour the text output: "+colorModes+" (NO_COLOR turns it off)")
	fs.BoolVar(&o.NoProgress, "no-progress", false, "never draw the progress bar (it is drawn only when stderr is a terminal)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usagef("run 'ckpt diff --help'", "diff needs exactly two checkpoints, A and B (got %d)", fs.NArg())
	}
	if o.JSON && o.Markdown {
		return usagef("pick one output format", "--json and --markdown cannot be used together")
	}
	if o.Workers < 0 || o.Top < 0 {
		return usagef("use -j 0 for one worker per CPU, --top 0 for all", "-j/--workers and --top must be 0 or more")
	}
	return runDiff(o, fs.Arg(0), fs.Arg(1), stdout, stderr)
}

// runDiff compares A with B and prints the result. Inputs that cannot be
// opened, malformed files and unreadable tensors are trouble (exit 2), after
// what could be compared is printed.
func runDiff(o diffOptions, pa, pb string, stdout, stderr io.Writer) error {
	color, err := useColor(o.Color, stdout)
	if err != nil {
		return err
	}
	st := styler{on: color}
	ca, err := formats.Open(pa)
	if err != nil {
		return reportPathError(stderr, pa, err)
	}
	cb, err := formats.Open(pb)
	if err != nil {
		return reportPathError(stderr, pb, err)
	}
	ctx, stop := signalContext()
	defer stop()
	bar := newByteProgress(stderr, scanBytes(ca)+scanBytes(cb), "diff", !o.NoProgress).countNetwork(formats.IsRemote(pa) || formats.IsRemote(pb))
	start := time.Now()
	res, err := diff.Compare(ctx, ca, cb, diff.Options{Workers: o.Workers, Progress: bar.Add})
	bar.Done()
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	switch {
	case o.JSON:
		err = writeJSON(stdout, diffJSON(res))
	case o.Markdown:
		writeDiffMarkdown(stdout, res, o)
	default:
		writeDiffText(stdout, st, res, o, elapsed)
	}
	if err != nil {
		return err
	}
	if res.CrossFormat != nil {
		return crossExit(res, stderr)
	}
	if len(res.Problems) > 0 || res.Summary.Unreadable > 0 {
		writeDiffTrouble(stderr, res.Problems, res.Tensors)
		fmt.Fprintf(stderr, "ckpt: hint: run 'ckpt inspect' on the malformed checkpoint; the comparison above covers only what could be read\n")
		return errReported
	}
	if !res.Summary.Same() {
		return errFindings
	}
	return nil
}

// suspects lists the tensors of a cross-format comparison far above their
// type's usual error.
func suspects(r *diff.Result) []*diff.TensorDiff {
	var out []*diff.TensorDiff
	for _, t := range r.Tensors {
		if t.Suspect {
			out = append(out, t)
		}
	}
	return out
}

// mismatch reports whether a cross-format comparison found that the
// architectures disagree.
func mismatch(r *diff.Result) bool {
	for _, p := range r.Problems {
		if errors.Is(p.Err, formats.ErrConfig) {
			return true
		}
	}
	return false
}

// crossExit is the exit status of a safetensors ↔ GGUF comparison: values
// always differ there, so 1 means a suspect tensor or architectures that
// disagree, 2 a file that could not be read; tensors left out on purpose
// (their reason says why) are not failures.
func crossExit(res *diff.Result, stderr io.Writer) error {
	var trouble []formats.Problem // an architecture mismatch is a finding, not trouble
	for _, p := range res.Problems {
		if !errors.Is(p.Err, formats.ErrConfig) {
			trouble = append(trouble, p)
		}
	}
	if len(trouble) > 0 {
		writeDiffTrouble(stderr, trouble, nil) // tensors left out here are not failures
		fmt.Fprintf(stderr, "ckpt: hint: run 'ckpt inspect' on the malformed checkpoint; the comparison above covers only what could be read\n")
		return errReported
	}
	if mismatch(res) || len(suspects(res)) > 0 {
		return errFindings
	}
	return nil
}

// writeCrossText prints what a cross-format comparison mapped and found.
func writeCrossText(w io.Writer, st styler, r *diff.Result) {
	cf := r.CrossFormat
	fmt.Fprintf(w, "\n%s safetensors ↔ GGUF (%s)\n", st.Bold("ACROSS FORMATS:"), safeText(cf.Architecture))
	for _, n := range cf.Notes {
		fmt.Fprintf(w, "  %s\n", safeText(n))
	}
	for _, p := range r.Problems {
		if errors.Is(p.Err, formats.ErrConfig) {
			fmt.Fprintf(w, "  %s %s\n", st.Red("error:"), safeText(p.Err.Detail))
		}
	}
	for _, t := range r.Tensors {
		if t.Status == diff.Unreadable && t.Reason != "" {
			fmt.Fprintf(w, "  %s: %s\n", safeText(t.Name), safeText(t.Reason))
		}
	}
	sus := suspects(r)
	if len(sus) == 0 {
		fmt.Fprintf(w, "  every compared tensor is within 10× the error its type usually costs\n")
		return
	}
	fmt.Fprintf(w, "\n%s\n", st.BoldRed("SUSPECT TENSORS"))
	for _, t := range sus {
		rel, _ := t.RelL2()
		dt := t.DTypeB
		if cf.GGUFSide == "a" {
			dt = t.DTypeA
		}
		fmt.Fprintf(w, "  %s: relative error %.3g, %.0f× the %.2g %s usually costs (a broken conversion, or compared with the wrong source tensor)\n",
			safeText(t.Name), rel, rel/t.UsualError, t.UsualError, dt)
	}
}

// writeDiffTrouble prints a diff's format problems and the unreadable tensors
// among tensors to stderr, at most maxSameKind of each kind (then one line
// counting the rest).
func writeDiffTrouble(stderr io.Writer, problems []formats.Problem, tensors []*diff.TensorDiff) {
	var lines, kinds []string
	for _, p := range problems {
		lines = append(lines, safeText(p.Err.Error()))
		kinds = append(kinds, messageKind(p.Err.Error(), p.Err.Tensor, "problem"))
	}
	for _, t := range tensors {
		if t.Status == diff.Unreadable {
			lines = append(lines, fmt.Sprintf("tensor %s could not be compared: %s", strconv.Quote(safeText(t.Name)), safeText(t.Reason)))
			kinds = append(kinds, messageKind(t.Reason, t.Name, "unreadable"))
		}
	}
	limit := newSameKindCap(kinds)
	for i, line := range lines {
		ok, rest := limit.show(kinds[i])
		if !ok {
			continue
		}
		fmt.Fprintf(stderr, "ckpt: error: %s\n", line)
		if rest > 0 {
			fmt.Fprintf(stderr, "ckpt: error: %s\n", moreOfTheSameKind(rest))
		}
	}
}

// reportPathError prints a path that could not be opened, as the other
// commands do, and returns errReported (exit 2).
func reportPathError(stderr io.Writer, path string, err error) error {
	pe := &pathError{Path: path, Err: err}
	fmt.Fprintf(stderr, "ckpt: error: %s\n", safeText(pe.Error()))
	if h := pe.hint(); h != "" {
		fmt.Fprintf(stderr, "ckpt: hint: %s\n", safeText(h))
	}
	return &reportedErrors{errs: []error{pe}}
}

// JSON form of a diff. a, b, tensors[name, status, rel_l2, max_abs, cosine]
// and summary are the contract; the rest are additions.
type diffReportJSON struct {
	A        string            `json:"a"`
	B        string            `json:"b"`
	Tensors  []diffTensorJSON  `json:"tensors"`
	Layers   []diffGroupJSON   `json:"layers"`
	Roles    []diffGroupJSON   `json:"roles"`
	Summary  diffSummaryJSON   `json:"summary"`
	Problems []diffProblemJSON `json:"problems"`
	// CrossFormat is set for a safetensors ↔ GGUF comparison.
	CrossFormat *crossFormatJSON `json:"cross_format,omitempty"`
}

type crossFormatJSON struct {
	Architecture string   `json:"architecture"`
	ModelType    string   `json:"model_type"`
	GGUFSide     string   `json:"gguf_side"`
	Notes        []string `json:"notes"`
	Suspect      int      `json:"suspect"` // tensors far above their type's usual error
}

type diffTensorJSON struct {
	Name        string   `json:"name"`
	Status      string   `json:"status"`
	RelL2       *float64 `json:"rel_l2"`
	MaxAbs      *float64 `json:"max_abs"`
	Cosine      *float64 `json:"cosine"`
	DTypeA      string   `json:"dtype_a,omitempty"`
	DTypeB      string   `json:"dtype_b,omitempty"`
	ShapeA      []uint64 `json:"shape_a,omitempty"`
	ShapeB      []uint64 `json:"shape_b,omitempty"`
	Changed     uint64   `json:"changed_elements"`
	Appeared    uint64   `json:"nonfinite_appeared"`
	Disappeared uint64   `json:"nonfinite_disappeared"`
	Reason      string   `json:"reason,omitempty"`
	UsualError  *float64 `json:"usual_error,omitempty"` // cross-format: what the GGUF type usually costs
	Suspect     bool     `json:"suspect,omitempty"`     // cross-format: far above it
}

type diffGroupJSON struct {
	Key      string   `json:"key"` // the layer ("" for tensors outside layers) or role
	Tensors  int      `json:"tensors"`
	Changed  int      `json:"changed"`
	RelL2    *float64 `json:"rel_l2"`
	MaxAbs   *float64 `json:"max_abs"`
	Appeared uint64   `json:"nonfinite_appeared"`
}

type diffSummaryJSON struct {
	Tensors      int      `json:"tensors"`
	Identical    int      `json:"identical"`
	Changed      int      `json:"changed"`
	OnlyA        int      `json:"only_a"`
	OnlyB        int      `json:"only_b"`
	ShapeChanged int      `json:"shape_changed"`
	DTypeChanged int      `json:"dtype_changed"`
	Unreadable   int      `json:"unreadable"`
	Appeared     uint64   `json:"nonfinite_appeared"`
	Disappeared  uint64   `json:"nonfinite_disappeared"`
	RelL2        *float64 `json:"rel_l2"`
	Bytes        int64    `json:"bytes"`
	Same         bool     `json:"same"`
	// BytesRead and ValuesDecoded are what the comparison cost: a checkpoint
	// compared with itself reads nothing, a byte-identical copy decodes nothing.
	BytesRead     int64 `json:"bytes_read"`
	ValuesDecoded int64 `json:"values_decoded"`
}

type diffProblemJSON struct {
	File    string `json:"file"`
	Tensor  string `json:"tensor"`
	Message string `json:"message"`
}

func numOrNull(v float64, ok bool) *float64 {
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// tensorNumbers are a tensor's rel_l2, max_abs and cosine for output:
// identical tensors have 0, 0 and 1 (they are not decoded, so these are known
// without reading the values).
func tensorNumbers(t *diff.TensorDiff) (rel, maxAbs, cos *float64) {
	if t.Status == diff.Identical {
		zero, one := 0.0, 1.0
		return &zero, &zero, &one
	}
	return numOrNull(t.RelL2()), numOrNull(t.MaxAbsDiff()), numOrNull(t.Cosine())
}

func diffJSON(r *diff.Result) diffReportJSON {
	out := diffReportJSON{A: r.A, B: r.B, Tensors: []diffTensorJSON{}, Layers: []diffGroupJSON{}, Roles: []diffGroupJSON{}, Problems: []diffProblemJSON{}}
	for _, t := range r.Tensors {
		rel, ma, cos := tensorNumbers(t)
		out.Tensors = append(out.Tensors, diffTensorJSON{Name: t.Name, Status: string(t.Status), RelL2: rel, MaxAbs: ma, Cosine: cos,
			DTypeA: string(t.DTypeA), DTypeB: string(t.DTypeB), ShapeA: t.ShapeA, ShapeB: t.ShapeB,
			Changed: t.Differ, Appeared: t.Appeared, Disappeared: t.Disappeared, Reason: t.Reason,
			UsualError: numOrNull(t.UsualError, t.UsualError > 0), Suspect: t.Suspect})
	}
	if cf := r.CrossFormat; cf != nil {
		out.CrossFormat = &crossFormatJSON{Architecture: cf.Architecture, ModelType: cf.ModelType, GGUFSide: cf.GGUFSide,
			Notes: append([]string{}, cf.Notes...), Suspect: len(suspects(r))}
	}
	group := func(g *diff.Group) diffGroupJSON {
		ma := numOrNull(g.MaxAbs, g.Pairs > 0 || g.Changed == 0)
		return diffGroupJSON{Key: g.Key, Tensors: g.Tensors, Changed: g.Changed, RelL2: numOrNull(g.RelL2()), MaxAbs: ma, Appeared: g.Appeared}
	}
	for _, g := range r.Layers {
		out.Layers = append(out.Layers, group(g))
	}
	for _, g := range r.Roles {
		out.Roles = append(out.Roles, group(g))
	}
	s := r.Summary
	out.Summary = diffSummaryJSON{Tensors: s.Tensors, Identical: s.Identical, Changed: s.Changed, OnlyA: s.OnlyA, OnlyB: s.OnlyB,
		ShapeChanged: s.ShapeChanged, DTypeChanged: s.DTypeChanged, Unreadable: s.Unreadable, Appeared: s.Appeared,
		Disappeared: s.Disappeared, RelL2: numOrNull(r.RelL2()), Bytes: s.Bytes, Same: s.Same(),
		BytesRead: r.Work.BytesRead, ValuesDecoded: r.Work.ValuesDecoded}
	for _, p := range r.Problems {
		out.Problems = append(out.Problems, diffProblemJSON{File: p.Err.File, Tensor: p.Err.Tensor, Message: p.Err.Error()})
	}
	return out
}

// numText formats an optional number for tables.
func numText(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'g', 4, 64)
}

func cosText(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', 6, 64)
}

// shownTensors are the tensors a text or Markdown view lists, and how many
// changed and identical ones it leaves out.
func shownTensors(r *diff.Result, o diffOptions) (shown []*diff.TensorDiff, moreChanged, identical int) {
	for _, t := range r.Tensors {
		if t.Status == diff.Identical {
			if o.All {
				shown = append(shown, t)
			} else {
				identical++
			}
			continue
		}
		if !o.All && o.Top > 0 && len(shown) >= o.Top {
			moreChanged++
			continue
		}
		shown = append(shown, t)
	}
	return shown, moreChanged, identical
}

func nonFiniteText(t *diff.TensorDiff) string {
	if t.Appeared == 0 && t.Disappeared == 0 {
		return ""
	}
	return fmt.Sprintf("+%s/-%s", groupDigits(t.Appeared), groupDigits(t.Disappeared))
}

func dtypeText(t *diff.TensorDiff) string {
	switch {
	case t.DTypeA == "":
		return string(t.DTypeB)
	case t.DTypeB == "" || t.DTypeA == t.DTypeB:
		return string(t.DTypeA)
	}
	return string(t.DTypeA) + "→" + string(t.DTypeB)
}

func shapeDiffText(t *diff.TensorDiff) string {
	switch {
	case t.ShapeA == nil && t.DTypeA == "":
		return shapeText(t.ShapeB)
	case t.DTypeB == "" || t.Status != diff.ShapeChanged:
		return shapeText(t.ShapeA)
	}
	return shapeText(t.ShapeA) + "→" + shapeText(t.ShapeB)
}

// writeDiffText prints the text view: the changed tensors, largest change
// first, the per-layer table and a verdict line.
func writeDiffText(w io.Writer, st styler, r *diff.Result, o diffOptions, elapsed time.Duration) {
	s := r.Summary
	fmt.Fprintf(w, "%s %s\n%s %s\ncompared %s, %s in %s\n", st.Bold("A:"), safeText(r.A), st.Bold("B:"), safeText(r.B),
		plural(s.Tensors, "tensor"), formats.HumanBytes(s.Bytes), elapsed.Round(time.Millisecond))
	shown, more, identical := shownTensors(r, o)
	if len(shown) > 0 {
		tt := textTable{header: []string{"STATUS", "TENSOR", "DTYPE", "SHAPE", "REL_L2", "MAX_ABS", "COSINE", "NONFINITE +/-"},
			right: map[int]bool{4: true, 5: true, 6: true}}
		for _, t := range shown {
			rel, ma, cos := tensorNumbers(t)
			status := cell{text: string(t.Status)}
			switch {
			case t.Appeared > 0 || t.Status == diff.Unreadable:
				status.style = st.Red
			case t.Status == diff.Identical:
				status.style = st.Dim
			case t.Status != diff.Changed:
				status.style = st.Yellow
			}
			nf := cell{text: nonFiniteText(t)}
			if t.Appeared > 0 {
				nf.style = st.Red
			}
			tt.addCells(status, cell{text: safeText(t.Name)}, cell{text: dtypeText(t)}, cell{text: shapeDiffText(t)},
				cell{text: numText(rel)}, cell{text: numText(ma)}, cell{text: cosText(cos)}, nf)
		}
		fmt.Fprintln(w)
		tt.write(w, st.Bold)
	}
	if more > 0 {
		fmt.Fprintf(w, "… and %s (--top 0 lists them)\n", plural(more, "more changed tensor"))
	}
	if identical > 0 {
		if len(shown) > 0 {
			fmt.Fprintf(w, "… and %s (--all lists them)\n", plural(identical, "identical tensor"))
		}
	}
	if o.Layers && s.Changed+s.DTypeChanged > 0 && len(r.Layers) > 1 {
		fmt.Fprintf(w, "\n%s\n", st.Bold("BY LAYER"))
		tt := textTable{header: []string{"LAYER", "TENSORS", "CHANGED", "REL_L2", "MAX_ABS", "NONFINITE+"}, right: map[int]bool{1: true, 2: true, 3: true, 4: true}}
		for _, g := range r.Layers {
			key := g.Key
			if key == "" {
				key = "(outside layers)"
			}
			app := ""
			if g.Appeared > 0 {
				app = groupDigits(g.Appeared)
			}
			tt.add(safeText(key), strconv.Itoa(g.Tensors), strconv.Itoa(g.Changed), numText(numOrNull(g.RelL2())), numText(numOrNull(g.MaxAbs, g.Pairs > 0 || g.Changed == 0)), app)
		}
		tt.write(w, st.Bold)
	}
	if r.CrossFormat != nil {
		writeCrossText(w, st, r)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, diffVerdict(st, r))
}

// diffVerdictText is the verdict in words, without styling.
func diffVerdictText(r *diff.Result) (same bool, text string) {
	s := r.Summary
	if s.Same() {
		return true, fmt.Sprintf("all %s are byte-identical", plural(s.Tensors, "tensor"))
	}
	var parts []string
	add := func(n int, what string) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(s.Changed, "changed")
	add(s.ShapeChanged, "with a new shape")
	add(s.DTypeChanged, "with a new dtype")
	add(s.OnlyA, "only in A")
	add(s.OnlyB, "only in B")
	add(s.Unreadable, "unreadable")
	text = fmt.Sprintf("%d of %s differ", s.Tensors-s.Identical, plural(s.Tensors, "tensor"))
	if len(parts) > 0 {
		text += " (" + joinWords(parts) + ")"
	}
	if rel := numOrNull(r.RelL2()); rel != nil && s.Changed+s.DTypeChanged > 0 {
		text += fmt.Sprintf("; overall relative change %s", numText(rel))
	}
	if s.Appeared > 0 {
		text += fmt.Sprintf("; %s non-finite values appeared", groupDigits(s.Appeared))
	}
	if s.Disappeared > 0 {
		text += fmt.Sprintf("; %s non-finite values disappeared", groupDigits(s.Disappeared))
	}
	return false, text
}

func joinWords(parts []string) string {
	out := ""
	for i, p := range parts {
		if i > 0 {
			out += ", "
		}
		out += p
	}
	return out
}

func diffVerdict(st styler, r *diff.Result) string {
	if r.CrossFormat != nil {
		if n := len(suspects(r)); n > 0 {
			return st.BoldRed("SUSPECT CONVERSION") + fmt.Sprintf(": %s far above the error of their type", plural(n, "tensor"))
		}
		for _, p := range r.Problems {
			if errors.Is(p.Err, formats.ErrConfig) {
				return st.BoldRed("MISMATCH") + ": " + safeText(p.Err.Detail)
			}
		}
		return st.BoldGreen("CONVERSION MATCHES") + fmt.Sprintf(": %s compared, each within its type's usual error", plural(r.Summary.Changed+r.Summary.DTypeChanged+r.Summary.Identical, "tensor"))
	}
	same, text := diffVerdictText(r)
	if same {
		return st.BoldGreen("IDENTICAL") + ": " + text
	}
	if r.Summary.Appeared > 0 {
		return st.BoldRed("DIFFERENT") + ": " + text
	}
	return st.Bold("DIFFERENT") + ": " + text
}

// writeDiffMarkdown prints the Markdown view: a verdict line, the changed
// tensors and the per-layer table.
func writeDiffMarkdown(w io.Writer, r *diff.Result, o diffOptions) {
	same, text := diffVerdictText(r)
	mark := "✅ **identical**"
	if !same {
		mark = "⚠️ **different**"
		if r.Summary.Appeared > 0 {
			mark = "❌ **different, non-finite values appeared**"
		}
	}
	if r.CrossFormat != nil { // a conversion: values always differ, the verdict is about its errors
		mark = "✅ **conversion matches**"
		if len(suspects(r)) > 0 || mismatch(r) {
			mark = "❌ **suspect conversion**"
		}
		text = diffVerdict(styler{}, r)
	}
	fmt.Fprintf(w, "**ckpt diff** %s → %s: %s — %s\n", mdCode(r.A), mdCode(r.B), mark, mdText(text))
	if o.Top == 0 || o.Top > markdownMaxFindings {
		o.Top = markdownMaxFindings
	}
	shown, more, identical := shownTensors(r, o)
	if len(shown) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| status | tensor | dtype | shape | rel_l2 | max_abs | cosine | non-finite +/- |")
		fmt.Fprintln(w, "| --- | --- | --- | --- | ---: | ---: | ---: | ---: |")
		for _, t := range shown {
			rel, ma, cos := tensorNumbers(t)
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", mdText(string(t.Status)), mdCode(t.Name), mdText(dtypeText(t)),
				mdText(shapeDiffText(t)), numText(rel), numText(ma), cosText(cos), nonFiniteText(t))
		}
	}
	if more > 0 || identical > 0 {
		fmt.Fprintf(w, "\n%d more changed and %d identical tensors not listed (run `ckpt diff` for all of them).\n", more, identical)
	}
	if r.Summary.Changed+r.Summary.DTypeChanged > 0 && len(r.Layers) > 1 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| layer | tensors | changed | rel_l2 |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: |")
		for _, g := range r.Layers {
			key := mdCode(g.Key)
			if g.Key == "" {
				key = "(outside layers)"
			}
			fmt.Fprintf(w, "| %s | %d | %d | %s |\n", key, g.Tensors, g.Changed, numText(numOrNull(g.RelL2())))
		}
	}
}
