package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ckpt-tool/ckpt/diff"
	"github.com/ckpt-tool/ckpt/inspect"
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
	Workers     int
	Color       string
	NoProgress  bool
	Force       bool // overwrite an existing report file
}

func runBisectCmd(args []string, stdout, stderr io.Writer) error {
	var o bisectOptions
	fs := newFlagSet("bisect", "bisect [flags] RUN_DIR | CHECKPOINT...", stderr)
	fs.BoolVar(&o.JSON, "json", false, "print one JSON object (the contract in the README)")
	fs.StringVar(&o.Report, "report", "", "also write a self-contained HTML report (plots of the log, update heatmap, culprits) to this file")
	fs.BoolVar(&o.Force, "force", false, "let --report replace an existing file")
	fs.StringVar(&o.Until, "until", "any", "what makes a checkpoint unhealthy: nonfinite (NaN/Inf), outlier (NaN/Inf or outlier errors) or any error finding")
	fs.BoolVar(&o.Fast, "fast", false, "measure drift only between the checkpoints the search scanned")
	fs.BoolVar(&o.NoDrift, "no-drift", false, "skip the drift timeline (verdict and training log only)")
	fs.IntVar(&o.Top, "top", 5, "tensors and layers named per drift interval")
	fs.Float64Var(&o.OnsetFactor, "onset-factor", diff.DefaultOnsetFactor, "drift onset: the first update this many times the median of the earlier ones")
	fs.IntVarP(&o.Workers, "workers", "j", 0, "goroutines per scan and comparison (0: one per CPU)")
	fs.StringVar(&o.Color, "color", "auto", "colour the text output: "+colorModes+" (NO_COLOR turns it off)")
	fs.BoolVar(&o.NoProgress, "no-progress", false, "never print progress lines (they are printed only when stderr is a terminal)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("run 'ckpt bisect --help'", "bisect needs a run directory (holding checkpoint-N/ directories) or two or more checkpoints")
	}
	until, err := diff.ParseUntil(o.Until)
	if err != nil {
		return usagef("use --until nonfinite, outlier or any", "%v", err)
	}
	if o.Workers < 0 || o.Top < 1 || !(o.OnsetFactor > 1) {
		return usagef("run 'ckpt bisect --help'", "-j must be 0 or more, --top 1 or more and --onset-factor above 1")
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
				return nil, "", usagef("give the directory that holds checkpoint-N/ directories, or list two or more checkpoints",
					"%s", err.Error())
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
	opts := diff.BisectOptions{Until: until, Fast: o.Fast, NoDrift: o.NoDrift, Top: o.Top, OnsetFactor: o.OnsetFactor, RunDir: runDir,
		Scan: inspect.Options{Workers: o.Workers}, Diff: diff.Options{Workers: o.Workers}}
	if !o.NoProgress && isTerminal(stderr) {
		opts.Log = func(format string, args ...any) {
			fmt.Fprintf(stderr, "ckpt bisect: %s\n", safeText(fmt.Sprintf(format, args...)))
		}
	}
	rep, err := diff.Bisect(ctx, es, opts)
	if err != nil {
		if errors.Is(err, diff.ErrNoSeries) {
			return usagef("check that the checkpoints hold safetensors weights", "%v", err)
		}
		return err
	}
	if o.JSON {
		err = writeJSON(stdout, rep)
	} else {
		writeBisectText(stdout, st, rep, args)
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
	if rep.FirstUnhealthy != nil {
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
	name := shortNamer(rep)
	complete := 0
	for _, c := range rep.Checkpoints {
		if c.Incomplete == "" {
			complete++
		}
	}
	what := strings.Join(args, " ")
	fmt.Fprintf(w, "%s %s: %s, %d complete\n\n", st.Bold("RUN"), safeText(what), plural(len(rep.Checkpoints), "checkpoint"), complete)

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
		}
	}
	tt := textTable{header: []string{"STEP", "CHECKPOINT", "VERDICT", "SCAN", "UPDATE", "NOTES"}, right: map[int]bool{0: true, 3: true, 4: true}}
	for _, c := range rep.Checkpoints {
		verdict := cell{text: strings.ReplaceAll(string(c.Verdict), "_", " ")}
		switch {
		case c.Incomplete != "":
			verdict = cell{text: "skipped", style: st.Yellow}
		case c.Verdict == diff.Healthy:
			verdict.style = st.Green
		case c.Verdict == diff.Unhealthy:
			verdict.style = st.Red
		default:
			verdict.style = st.Dim
		}
		scan := ""
		if c.ScanOrder > 0 {
			scan = "#" + strconv.Itoa(c.ScanOrder)
		}
		upd := ""
		if iv := update[c.Step]; iv != nil {
			upd = relText(iv.RelUpdate)
		}
		var notes []string
		if c.Incomplete != "" {
			notes = append(notes, c.Incomplete)
		}
		if o := rep.DriftOnset; o != nil && o.ToStep == c.Step {
			notes = append(notes, fmt.Sprintf("drift onset (%s× the earlier updates)", o.FactorText()))
		}
		if fu := rep.FirstUnhealthy; fu != nil && fu.Path == c.Path {
			notes = append(notes, "first unhealthy")
		}
		if lh := rep.LastHealthy; lh != nil && lh.Path == c.Path {
			notes = append(notes, "last healthy")
		}
		if r := rep.Recommendation.RollbackTo; r != nil && r.Path == c.Path {
			notes = append(notes, "roll back here")
		}
		notes = append(notes, events[c.Step]...)
		note := cell{text: safeText(strings.Join(notes, "; "))}
		if c.Verdict == diff.Unhealthy && c.Errors > 0 {
			note.text = strings.TrimPrefix(note.text+"; "+plural(c.Errors, "error finding"), "; ")
		}
		tt.addCells(cell{text: strconv.Itoa(c.Step)}, cell{text: safeText(name(c.Path))}, verdict, cell{text: scan}, cell{text: upd}, note)
	}
	tt.write(w, st.Bold)

	fmt.Fprintln(w)
	scanned := fmt.Sprintf("scanned %d of %d complete checkpoints for the verdict (budget %d)", rep.VerdictScans, complete, rep.ScanBudget)
	switch {
	case rep.FirstUnhealthy == nil:
		fmt.Fprintf(w, "%s: every checkpoint is healthy (the newest, %s, scans clean; damage is assumed to persist once it appears); %s\n",
			st.BoldGreen("HEALTHY"), safeText(name(rep.LastHealthy.Path)), scanned)
	case rep.LastHealthy == nil:
		fmt.Fprintf(w, "%s: the oldest checkpoint, %s, is already unhealthy; %s\n", st.BoldRed("UNHEALTHY"), safeText(name(rep.FirstUnhealthy.Path)), scanned)
	default:
		fmt.Fprintf(w, "%s: first unhealthy %s (step %d), last healthy %s (step %d); %s\n", st.BoldRed("UNHEALTHY"),
			safeText(name(rep.FirstUnhealthy.Path)), rep.FirstUnhealthy.Step, safeText(name(rep.LastHealthy.Path)), rep.LastHealthy.Step, scanned)
	}
	if len(rep.Culprits) > 0 {
		fmt.Fprintf(w, "\n%s in %s (%s)\n", st.Bold("CULPRITS"), safeText(name(rep.FirstUnhealthy.Path)), plural(len(rep.Culprits), "error finding"))
		var fs []inspect.Finding
		for i, c := range rep.Culprits {
			if i == 10 {
				break
			}
			fs = append(fs, inspect.Finding{Severity: "error", Check: c.Check, Tensor: c.Tensor, File: c.File, Message: c.Message})
		}
		writeFindings(w, st, fs, func(string) string { return "" })
		if len(rep.Culprits) > 10 {
			fmt.Fprintf(w, "… and %d more (--json lists them all)\n", len(rep.Culprits)-10)
		}
	}
	if o := rep.DriftOnset; o != nil {
		fmt.Fprintf(w, "\n%s between %s and %s: relative update %s, %s× the median (%s) of the intervals before\n", st.Bold("DRIFT ONSET"),
			safeText(name(o.FromPath)), safeText(name(o.ToPath)), relText(&o.RelUpdate), o.FactorText(), relText(&o.Baseline))
		for _, iv := range rep.Drift {
			if iv.ToStep != o.ToStep {
				continue
			}
			fmt.Fprintf(w, "  tensors that moved most: %s\n", movesText(iv.TopTensors))
			if len(iv.TopLayers) > 0 {
				fmt.Fprintf(w, "  layers that moved most:  %s\n", movesText(iv.TopLayers))
			}
		}
	} else if len(rep.Drift) > 0 {
		fmt.Fprintf(w, "\n%s: no interval's update jumps above %s× the median of the ones before\n", st.Bold("DRIFT"), "the onset factor")
	}
	if tl := rep.TrainingLog; tl != nil && tl.Path != "" {
		fmt.Fprintf(w, "\n%s %s (global step %d)\n", st.Bold("TRAINING LOG"), safeText(tl.Path), tl.GlobalStep)
		if len(tl.Events) == 0 {
			fmt.Fprintln(w, "  nothing noteworthy: no non-finite loss or grad_norm, no learning-rate jump, no spike")
		}
		et := textTable{right: map[int]bool{0: true}}
		for i, e := range tl.Events {
			if i == 30 {
				break
			}
			style := st.Yellow
			if strings.HasPrefix(e.Kind, "nonfinite") {
				style = st.Red
			}
			et.addCells(cell{text: "  " + strconv.Itoa(e.Step)}, cell{text: e.Kind, style: style}, cell{text: safeText(e.Message)})
		}
		et.write(w, nil)
		if len(tl.Events) > 30 {
			fmt.Fprintf(w, "  … and %d more events (--json lists them all)\n", len(tl.Events)-30)
		}
	}
	rec := rep.Recommendation
	fmt.Fprintln(w)
	if rec.RollbackTo != nil {
		fmt.Fprintf(w, "%s: roll back to %s (%s)\n  %s\n", st.Bold("RECOMMENDATION"), st.Bold(safeText(name(rec.RollbackTo.Path))), safeText(rec.RollbackTo.Path), safeText(rec.Reason))
	} else {
		fmt.Fprintf(w, "%s: %s\n", st.Bold("RECOMMENDATION"), safeText(rec.Reason))
	}
	for _, a := range rec.Advice {
		fmt.Fprintf(w, "  - %s\n", safeText(a.Message))
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "%s\n", st.Dim("note: "+safeText(n)))
	}
}

func movesText(ms []diff.Move) string {
	var parts []string
	for _, m := range ms {
		parts = append(parts, fmt.Sprintf("%s %s", safeText(m.Name), relText(m.RelUpdate)))
	}
	return strings.Join(parts, ", ")
}
