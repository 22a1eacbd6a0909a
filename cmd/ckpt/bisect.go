package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ckpt-tool/ckpt/diff"
	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
	"github.com/ckpt-tool/ckpt/probe"
)

// ckpt bisect: the first unhealthy checkpoint of a run, the drift onset, the
// training log's events and what to roll back to.

func init() {
	register(command{
		name:    "bisect",
		summary: "first unhealthy checkpoint of a run, drift onset, training-log events",
		run:     runBisectCmd,
	})
}

// bisectOptions are the flags of ckpt bisect.
type bisectOptions struct {
	JSON        bool
	Report      string // write the HTML report here
	Until       string
	Fast        bool
	NoDrift     bool
	Top         int
	OnsetFactor float64
	UpdateWarn  float64 // the optimizer's predicted-update warning threshold
	Workers     int
	Color       string
	NoProgress  bool
	Force       bool   // overwrite an existing report file
	JUnit       string // also write a JUnit XML report here
	Probe       bool   // --until probe
	ProbeDType  string
	ProbeTokens string
	PairsPart   string          // --pairs-part K/N: compute a share of the drift timeline for ckpt merge
	intervals   []diff.Interval // set by ckpt merge: the drift timeline the parts computed
}

func runBisectCmd(args []string, stdout, stderr io.Writer) error {
	var o bisectOptions
	fs := newFlagSet("bisect", "bisect [flags] RUN_DIR | CHECKPOINT...", stderr)
	fs.BoolVar(&o.JSON, "json", false, "print one JSON object (the contract in the README)")
	fs.StringVar(&o.Report, "report", "", "also write a self-contained HTML report (plots of the log, update heatmap, culprits) to this file")
	fs.StringVar(&o.JUnit, "junit", "", "also write a JUnit XML report to `FILE` (a test case per checkpoint, the drift timeline and the training log) for GitLab, Jenkins and other CI")
	fs.BoolVar(&o.Force, "force", false, "let --report replace an existing file")
	fs.StringVar(&o.Until, "until", "any", "what makes a checkpoint unhealthy: nonfinite (NaN/Inf), outlier (NaN/Inf or outlier errors), any error finding, or probe (its forward pass fails; shown next to the first checkpoint with non-finite weights)")
	fs.StringVar(&o.ProbeDType, "dtype", "", "with --until probe: the dtype the model is served in, f32, bf16 or f16 (default: each checkpoint's torch_dtype)")
	fs.StringVar(&o.ProbeTokens, "tokens", "", "with --until probe: comma-separated token ids to run (default: as ckpt probe)")
	fs.BoolVar(&o.Fast, "fast", false, "measure drift only between the checkpoints the search scanned")
	fs.BoolVar(&o.NoDrift, "no-drift", false, "skip the drift timeline (verdict and training log only)")
	fs.IntVar(&o.Top, "top", 5, "tensors and layers named per drift interval")
	addUpdateWarnFlag(fs, &o.UpdateWarn)
	fs.Float64Var(&o.OnsetFactor, "onset-factor", diff.DefaultOnsetFactor, "drift onset: the first update this many times the median of the earlier ones")
	fs.IntVarP(&o.Workers, "workers", "j", 0, "goroutines per scan and comparison (0: one per CPU)")
	fs.StringVar(&o.Color, "color", "auto", "colour the text output: "+colorModes+" (NO_COLOR turns it off)")
	fs.BoolVar(&o.NoProgress, "no-progress", false, "never print progress lines (they are printed only when stderr is a terminal)")
	fs.StringVar(&o.PairsPart, "pairs-part", "", "compute only part `K/N` of the drift timeline (0 <= K < N, a run of consecutive checkpoint pairs) and write it with --json for 'ckpt merge'")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("run 'ckpt bisect --help'", "bisect needs a run directory (holding checkpoint-N/ directories) or two or more checkpoints")
	}
	if o.Until == "probe" {
		o.Probe, o.Until = true, string(diff.UntilNonFinite) // the weights' verdict shown beside the probe's
	} else if o.ProbeDType != "" || o.ProbeTokens != "" {
		return usagef("add --until probe", "--dtype and --tokens apply to --until probe only")
	}
	until, err := diff.ParseUntil(o.Until)
	if err != nil {
		return usagef("use --until nonfinite, outlier, any or probe", "--until: %w", err)
	}
	if o.Workers < 0 || o.Top < 1 || !(o.OnsetFactor > 1) {
		return usagef("run 'ckpt bisect --help'", "-j must be 0 or more, --top 1 or more and --onset-factor above 1")
	}
	if o.PairsPart != "" {
		k, n, err := parsePart("pairs-part", o.PairsPart)
		if err != nil {
			return err
		}
		return runBisectPart(o, k, n, fs.Args(), stdout, stderr)
	}
	return runBisect(o, until, fs.Args(), stdout, stderr)
}

// bisectSeries turns the arguments into a series: one run directory, or
// several checkpoints.
func bisectSeries(args []string) ([]*diff.Entry, string, error) {
	if len(args) == 1 {
		es, err := diff.Discover(args[0])
		if err != nil {
			if errors.Is(err, diff.ErrNoSeries) {
				return nil, "", usagef("give the directory that holds checkpoint-N/ directories, or list two or more checkpoints", "%w", err)
			}
			return nil, "", &pathError{Path: args[0], Err: err}
		}
		return es, args[0], nil
	}
	es, err := diff.FromPaths(args)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, "", &pathError{Path: pe.Path, Err: err}
		}
		return nil, "", err
	}
	return es, "", nil
}

func runBisect(o bisectOptions, until diff.Until, args []string, stdout, stderr io.Writer) error {
	color, err := useColor(o.Color, stdout)
	if err != nil {
		return err
	}
	st := styler{on: color}
	if o.Report != "" && !o.Force {
		if _, err := os.Lstat(o.Report); err == nil {
			return usagef("pick a new file name, or add --force", "%s: already exists; --report does not replace files", o.Report)
		}
	}
	var popts probe.Options
	if o.Probe {
		popts, err = (probeOptions{DType: o.ProbeDType, Tokens: o.ProbeTokens, Workers: o.Workers}).probeOptions()
		if err != nil {
			return err
		}
	}
	es, runDir, err := bisectSeries(args)
	if err != nil {
		var pe *pathError
		if errors.As(err, &pe) {
			return reportPathError(stderr, pe.Path, pe.Err)
		}
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	if err := validateUpdateWarn(o.UpdateWarn); err != nil {
		return err
	}
	opts := diff.BisectOptions{Until: until, Fast: o.Fast, NoDrift: o.NoDrift, Top: o.Top, OnsetFactor: o.OnsetFactor, RunDir: runDir, UpdateWarn: o.UpdateWarn,
		Scan: inspect.Options{Workers: o.Workers}, Diff: diff.Options{Workers: o.Workers}, Intervals: o.intervals}
	if !o.NoProgress && isTerminal(stderr) {
		opts.Log = bisectLog(stderr, anyRemote(es))
	}
	start := time.Now()
	rep, err := diff.Bisect(ctx, es, opts)
	if err != nil {
		if errors.Is(err, diff.ErrNoSeries) {
			return withHint(err, "check that the checkpoints hold safetensors weights")
		}
		return err
	}
	var pr *bisectProbeJSON
	if o.Probe {
		if pr, err = probeSeries(es, rep, popts, opts.Log); err != nil {
			return err
		}
		recommendFromProbe(rep, pr)
	}
	switch {
	case o.JSON && o.Probe:
		err = writeJSON(stdout, bisectWithProbe{rep, pr})
	case o.JSON:
		err = writeJSON(stdout, rep)
	default:
		writeBisectText(stdout, st, rep, args)
		if pr != nil {
			writeBisectProbeText(stdout, st, pr)
		}
	}
	if err != nil {
		return err
	}
	if o.Report != "" {
		startCleanupSection() // a signal now must not end it between writing and renaming
		if err := ctx.Err(); err != nil {
			return &interruptedError{msg: "interrupted: the report was not written", err: err}
		}
		if err := writeReportFile(o.Report, rep, o.Force); err != nil {
			return fmt.Errorf("%s: writing the report: %w", o.Report, err)
		}
		if !o.JSON {
			fmt.Fprintf(stdout, "\nreport written to %s\n", safeText(o.Report))
		}
	}
	if o.JUnit != "" {
		if err := writeJUnit(o.JUnit, "ckpt bisect", []junitSuite{bisectJUnitSuite(strings.Join(args, " "), rep, start, time.Since(start))}); err != nil {
			return err
		}
	}
	if rep.FirstUnhealthy != nil || (pr != nil && pr.FirstFailing != nil) {
		return errFindings
	}
	return nil
}

// shortName is the checkpoint's name as shown: its base name, with the parent
// directory when the base name alone is ambiguous in the series.
func shortNamer(rep *diff.Report) func(string) string {
	count := map[string]int{}
	for _, c := range rep.Checkpoints {
		count[filepath.Base(c.Path)]++
	}
	return func(p string) string {
		b := filepath.Base(p)
		if count[b] > 1 {
			return filepath.Join(filepath.Base(filepath.Dir(p)), b)
		}
		return b
	}
}

func relText(v *float64) string {
	if v == nil {
		return "-"
	}
	if *v >= 0.01 {
		return strconv.FormatFloat(*v, 'f', 3, 64)
	}
	return strconv.FormatFloat(*v, 'e', 2, 64)
}

// writeBisectText prints the text view of a bisect.
func writeBisectText(w io.Writer, st styler, rep *diff.Report, args []string) {
	v := newBisectView(rep)
	what := strings.Join(args, " ")
	fmt.Fprintf(w, "%s %s: %s, %d complete\n\n", st.Bold("RUN"), safeText(what), plural(v.Total, "checkpoint"), v.Complete)

	tt := textTable{header: []string{"STEP", "CHECKPOINT", "VERDICT", "SCAN", "UPDATE", "NOTES"}, right: map[int]bool{0: true, 3: true, 4: true}}
	for _, r := range v.Rows {
		verdict := cell{text: r.Verdict}
		switch r.Class {
		case "skipped":
			verdict.style = st.Yellow
		case string(diff.Healthy):
			verdict.style = st.Green
		case string(diff.Unhealthy):
			verdict.style = st.Red
		default:
			verdict.style = st.Dim
		}
		tt.addCells(cell{text: strconv.Itoa(r.Step)}, cell{text: r.Name}, verdict, cell{text: r.Scan}, cell{text: r.Update}, cell{text: strings.Join(r.Notes, "; ")})
	}
	tt.write(w, st.Bold)

	fmt.Fprintln(w)
	scanned := fmt.Sprintf("scanned %d of %d complete checkpoints for the verdict (budget %d)", rep.VerdictScans, v.Complete, rep.ScanBudget)
	switch {
	case v.Healthy:
		fmt.Fprintf(w, "%s: every checkpoint is healthy (the newest, %s, scans clean; damage is assumed to persist once it appears); %s\n",
			st.BoldGreen("HEALTHY"), v.Newest, scanned)
	case v.LastGood == nil:
		fmt.Fprintf(w, "%s: the oldest checkpoint, %s, is already unhealthy; %s\n", st.BoldRed("UNHEALTHY"), v.FirstBad.Name, scanned)
	default:
		fmt.Fprintf(w, "%s: first unhealthy %s (step %d), last healthy %s (step %d); %s\n", st.BoldRed("UNHEALTHY"),
			v.FirstBad.Name, v.FirstBad.Step, v.LastGood.Name, v.LastGood.Step, scanned)
	}
	if len(v.Culprits) > 0 && v.FirstBad != nil {
		fmt.Fprintf(w, "\n%s in %s (%s)\n", st.Bold("CULPRITS"), v.FirstBad.Name, plural(len(v.Culprits), "error finding"))
		var fs []inspect.Finding
		for i, c := range v.Culprits {
			if i == 10 {
				break
			}
			fs = append(fs, inspect.Finding{Severity: "error", Check: c.Check, Tensor: c.Tensor, File: c.File, Message: c.Message})
		}
		writeFindings(w, st, fs, func(string) string { return "" })
		if len(v.Culprits) > 10 {
			fmt.Fprintf(w, "… and %d more (--json lists them all)\n", len(v.Culprits)-10)
		}
	}
	if o := v.Onset; o != nil {
		fmt.Fprintf(w, "\n%s between %s and %s: relative update %s, %s× the median (%s) of the intervals before\n", st.Bold("DRIFT ONSET"),
			o.From.Name, o.To.Name, o.Update, o.Factor, o.Baseline)
		if len(o.TopTensors) > 0 {
			fmt.Fprintf(w, "  tensors that moved most: %s\n", movesText(o.TopTensors))
		}
		if len(o.TopLayers) > 0 {
			fmt.Fprintf(w, "  layers that moved most:  %s\n", movesText(o.TopLayers))
		}
	} else if v.NoOnset != "" {
		fmt.Fprintf(w, "\n%s: %s\n", st.Bold("DRIFT"), v.NoOnset)
	}
	if tl := rep.TrainingLog; tl != nil && tl.Path != "" {
		fmt.Fprintf(w, "\n%s %s (global step %d)\n", st.Bold("TRAINING LOG"), safeText(tl.Path), tl.GlobalStep)
		if len(v.Events) == 0 {
			fmt.Fprintln(w, "  nothing noteworthy: no non-finite loss or grad_norm, no learning-rate jump, no spike")
		}
		et := textTable{right: map[int]bool{0: true}}
		for i, e := range v.Events {
			if i == 30 {
				break
			}
			style := st.Yellow
			if strings.HasPrefix(e.Kind, "nonfinite") {
				style = st.Red
			}
			et.addCells(cell{text: "  " + strconv.Itoa(e.Step)}, cell{text: e.Kind, style: style}, cell{text: e.Message})
		}
		et.write(w, nil)
		if len(v.Events) > 30 {
			fmt.Fprintf(w, "  … and %d more events (--json lists them all)\n", len(v.Events)-30)
		}
	}
	fmt.Fprintln(w)
	if v.Rollback != nil {
		fmt.Fprintf(w, "%s: roll back to %s (%s)\n  %s\n", st.Bold("RECOMMENDATION"), st.Bold(v.Rollback.Name), v.RollbackP, v.Reason)
	} else {
		fmt.Fprintf(w, "%s: %s\n", st.Bold("RECOMMENDATION"), v.Reason)
	}
	for _, a := range v.Advice {
		fmt.Fprintf(w, "  - %s\n", a)
	}
	if rep.Recommendation.ResumeReason != "" {
		fmt.Fprintf(w, "%s: %s\n", st.Bold("RESUME"), safeText(rep.Recommendation.ResumeReason))
	}
	for _, n := range v.Notes {
		fmt.Fprintf(w, "%s\n", st.Dim("note: "+n))
	}
}

// bisectLog prints bisect's progress lines on w; over remote checkpoints
// (network) each line also says the bytes received over the network so far.
func bisectLog(w io.Writer, network bool) func(format string, args ...any) {
	var net func() int64
	if network {
		net = networkCounter()
	}
	return func(format string, args ...any) {
		line := safeText(fmt.Sprintf(format, args...))
		if net != nil {
			line = networkLabel(line, net()) + " so far"
		}
		fmt.Fprintf(w, "ckpt bisect: %s\n", line)
	}
}

// anyRemote reports whether a checkpoint of the series is read over the
// network.
func anyRemote(es []*diff.Entry) bool {
	for _, e := range es {
		if formats.IsRemote(e.Path) {
			return true
		}
	}
	return false
}
