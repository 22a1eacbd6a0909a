package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/ckpt-tool/ckpt/diff"
	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
	"github.com/ckpt-tool/ckpt/repair"
)

// ckpt repair: a verified, atomic repaired merge of a damaged checkpoint with
// a healthy one.

func init() {
	register(command{
		name:    "repair",
		summary: "write a verified repaired checkpoint: BAD's damaged tensors from GOOD",
		run:     runRepairCmd,
	})
}

// repairFlags are the flags of ckpt repair.
type repairFlags struct {
	From       string
	Out        string
	Strategy   string
	Elements   bool
	Force      bool
	DryRun     bool
	JSON       bool
	Workers    int
	Source     string
	Color      string
	NoProgress bool
}

const repairUsage = "repair BAD --from GOOD|auto -o OUT [flags]"

func runRepairCmd(args []string, stdout, stderr io.Writer) error {
	var o repairFlags
	fs := newFlagSet("repair", repairUsage, stderr)
	fs.StringVar(&o.From, "from", "", "the healthy checkpoint to take tensors from, or auto: the one bisect recommends in BAD's run directory")
	fs.StringVarP(&o.Out, "out", "o", "", "where to write the repaired checkpoint (must not exist; a file when BAD is a file)")
	fs.StringVar(&o.Strategy, "strategy", "tensors", "what to take from GOOD: tensors (each damaged tensor), layers (every tensor of each damaged transformer block) or all (GOOD's weights in BAD's layout)")
	fs.BoolVar(&o.Elements, "elements", false, "replace only the non-finite elements of damaged tensors (the result mixes two training states)")
	fs.BoolVar(&o.Force, "force", false, "replace an existing OUT (atomically; never an input)")
	fs.BoolVarP(&o.DryRun, "dry-run", "n", false, "print the plan and write nothing")
	fs.BoolVar(&o.JSON, "json", false, "print the plan and the verification as one JSON object")
	fs.IntVarP(&o.Workers, "workers", "j", 0, "tensors scanned in parallel by this many goroutines (0: one per CPU)")
	fs.StringVar(&o.Source, "source", "pread", "how scans read bytes: pread or mmap")
	fs.StringVar(&o.Color, "color", "auto", "colour the text output: "+colorModes+" (NO_COLOR turns it off)")
	fs.BoolVar(&o.NoProgress, "no-progress", false, "never draw progress bars (they are drawn only when stderr is a terminal)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	hint := "run 'ckpt repair --help'"
	switch {
	case fs.NArg() != 1:
		return usagef(hint, "repair needs exactly one BAD checkpoint, got %d arguments", fs.NArg())
	case o.From == "":
		return usagef("give --from GOOD (a healthy checkpoint of the same model) or --from auto", "repair needs --from")
	case o.Out == "":
		return usagef("give -o OUT, a new path for the repaired checkpoint", "repair needs -o OUT")
	case o.Workers < 0:
		return usagef("use -j 0 for one worker per CPU", "-j/--workers must be 0 or more, not %d", o.Workers)
	}
	return runRepair(o, fs.Arg(0), stdout, stderr)
}

// repairJSON is the --json document: the repair report plus how GOOD was chosen.
type repairJSON struct {
	*repair.Report
	DryRun bool          `json:"dry_run"`
	Auto   *repairAuto   `json:"auto,omitempty"`
	Resume *repairResume `json:"resume"`
}

func runRepair(o repairFlags, bad string, stdout, stderr io.Writer) error {
	src, err := formats.ParseSourceMode(o.Source)
	if err != nil {
		return usagef("use --source pread or --source mmap", "--source: %w", err)
	}
	color, err := useColor(o.Color, stdout)
	if err != nil {
		return err
	}
	st := styler{on: color}
	ctx, stop := signalContext()
	defer stop()
	setStopMessage("interrupted: nothing was written")
	scanOpts := inspect.Options{Workers: o.Workers, Source: src}

	var bar *byteProgress
	done := func() {
		bar.Done()
		bar = nil
	}
	defer done()
	progress := func(phase repair.Phase, total int64) func(int64) {
		done()
		bar = newByteProgress(stderr, total, string(phase), !o.NoProgress)
		return bar.Add
	}

	good := o.From
	var auto *repairAuto
	if o.From == "auto" {
		logf := func(format string, args ...any) {}
		if !o.NoProgress && isTerminal(stderr) {
			logf = func(format string, args ...any) { fmt.Fprintf(stderr, "ckpt: bisect: "+format+"\n", args...) }
		}
		auto, err = autoGood(ctx, bad, diff.BisectOptions{Scan: scanOpts, Log: logf})
		if err != nil {
			return withHint(fmt.Errorf("--from auto: %w", err), "give GOOD explicitly with --from PATH, or run 'ckpt bisect' on the run directory to see why")
		}
		good = auto.Good
	}
	strategy, err := repair.ParseStrategy(o.Strategy)
	if err != nil {
		return usagef("use --strategy tensors, layers or all", "--strategy: %w", err)
	}
	opts := repair.Options{Bad: bad, Good: good, Out: o.Out, Strategy: strategy, Elements: o.Elements, Force: o.Force,
		Version: version, Scan: scanOpts, Progress: progress}
	plan, err := repair.NewPlan(ctx, opts)
	done()
	if err != nil {
		return repairError(err)
	}
	var rep *repair.Report
	if o.DryRun {
		rep = &repair.Report{Plan: plan, Out: plan.Out, Inputs: []repair.InputFile{}}
	} else {
		startCleanupSection() // Execute stops at its next chunk and removes its temporary output
		rep, err = plan.Execute(ctx)
		done()
	}
	var resume *repairResume
	if err == nil && plan.Healthy {
		var rerr error
		if resume, rerr = resumeAfterRepair(ctx, good, auto, scanOpts); rerr != nil {
			return rerr
		}
	}
	if o.JSON {
		if werr := writeJSON(stdout, repairJSON{Report: rep, DryRun: o.DryRun, Auto: auto, Resume: resume}); werr != nil {
			return werr
		}
	} else {
		writeRepairText(stdout, st, rep, auto, o.DryRun, err)
		if resume != nil {
			fmt.Fprintf(stdout, "%s %s\n", st.Bold("deployment:"), safeText(resume.Reason))
		}
	}
	switch {
	case err != nil && errors.Is(err, repair.ErrUnhealthy):
		return errFindings
	case err != nil:
		return repairError(err)
	case o.DryRun && !plan.Healthy:
		return errFindings
	}
	return nil
}

// repairError adds a hint to a repair refusal (exit 2). Inconsistent options
// are a usage error; every other refusal is the command failing to do its job
// on these inputs, and keeps its error chain.
func repairError(err error) error {
	hint := ""
	switch {
	case errors.Is(err, repair.ErrOptions):
		return usagef("run 'ckpt repair --help'", "%w", err)
	case errors.Is(err, repair.ErrOutputExists):
		hint = "choose a new -o path, or pass --force to replace OUT atomically"
	case errors.Is(err, repair.ErrOutputIsInput):
		hint = "write the repaired checkpoint to a new path outside BAD and GOOD"
	case errors.Is(err, repair.ErrSameInput):
		hint = "GOOD must be another checkpoint (an earlier, healthy one of the same run)"
	case errors.Is(err, repair.ErrIncompatible):
		hint = "GOOD must be a checkpoint of the same model (same tensor names, dtypes and shapes); 'ckpt diff BAD GOOD' shows the differences"
	case errors.Is(err, repair.ErrGoodUnreadable):
		hint = "'ckpt inspect GOOD' shows what is wrong with its files; choose another GOOD"
	case errors.Is(err, repair.ErrLayoutUnreadable):
		hint = "'ckpt inspect BAD' shows what is wrong with its files"
	case errors.Is(err, repair.ErrPickleCode):
		hint = "ckpt ran nothing; 'ckpt scan' of that file lists what its pickle names. Take weights only from a source you trust"
	case errors.Is(err, repair.ErrNoSpace):
		hint = "free some space or write OUT to another file system"
	case errors.Is(err, context.Canceled):
		return &interruptedError{msg: "interrupted: nothing was written (the temporary output was removed)", err: err}
	}
	return withHint(err, hint)
}

// maxRepairRows is how many replaced tensors the text output lists.
const maxRepairRows = 20

// writeRepairText prints the plan, the verification and what was written.
func writeRepairText(w io.Writer, st styler, rep *repair.Report, auto *repairAuto, dryRun bool, err error) {
	p := rep.Plan
	fmt.Fprintf(w, "%s %s\n", st.Bold("repair"), safeText(p.Bad))
	if auto != nil {
		fmt.Fprintf(w, "  from  %s (chosen by bisect: %s)\n", safeText(p.Good), safeText(auto.Reason))
	} else {
		fmt.Fprintf(w, "  from  %s\n", safeText(p.Good))
	}
	fmt.Fprintf(w, "  into  %s\n", safeText(p.Out))
	mode := string(p.Strategy)
	if p.Elements {
		mode += ", non-finite elements only"
	}
	fmt.Fprintf(w, "  strategy %s: %s from GOOD, %s kept from BAD, in %s (%s layout)\n", mode,
		plural(p.Replaced, "tensor"), plural(p.Kept, "tensor"), plural(len(p.Files), "file"), p.Layout)

	if p.Replaced > 0 {
		fmt.Fprintln(w)
		t := textTable{header: []string{"tensor", "from", "why"}}
		shown := 0
		for _, tp := range p.Tensors {
			if tp.From == repair.FromBad {
				continue
			}
			if shown++; shown > maxRepairRows {
				continue
			}
			from := "GOOD"
			if tp.From == repair.FromElements {
				from = "GOOD, non-finite elements"
				if tp.ElementsReplaced > 0 {
					from = fmt.Sprintf("GOOD, %s", plural(int(tp.ElementsReplaced), "element"))
				}
			}
			t.add(safeText(tp.Name), from, truncateText(safeText(tp.Why), 160))
		}
		t.write(w, st.Dim)
		if shown > maxRepairRows {
			fmt.Fprintf(w, "… and %d more tensors from GOOD (--json lists every one)\n", shown-maxRepairRows)
		}
	}
	if len(p.Copy) > 0 || len(p.Skip) > 0 || p.TiedTensors > 0 {
		fmt.Fprintln(w)
	}
	for _, f := range p.Files {
		tied := make([]string, 0, len(f.Tied))
		for name, to := range f.Tied {
			tied = append(tied, name+" → "+to)
		}
		if len(tied) > 0 {
			sort.Strings(tied)
			fmt.Fprintf(w, "tied weights written once in %s (listed in its __metadata__ %q): %s\n", safeText(f.Name), formats.TiedTensorsKey, safeText(strings.Join(tied, ", ")))
		}
	}
	if len(p.Copy) > 0 {
		fmt.Fprintf(w, "copied beside the weights: %s\n", safeText(strings.Join(p.Copy, ", ")))
	}
	var reasons []string
	byReason := map[string][]string{}
	for _, s := range p.Skip {
		if byReason[s.Why] == nil {
			reasons = append(reasons, s.Why)
		}
		byReason[s.Why] = append(byReason[s.Why], s.Name)
	}
	for _, why := range reasons {
		fmt.Fprintf(w, "not copied (%s): %s\n", safeText(why), safeText(strings.Join(byReason[why], ", ")))
	}
	for _, prob := range p.Problems {
		fmt.Fprintf(w, "%s BAD: %s\n", st.Yellow("note:"), safeText(prob))
	}
	for _, warn := range p.Warnings {
		fmt.Fprintf(w, "%s %s\n", st.Yellow("warning:"), safeText(warn))
	}
	if p.Replaced == 0 && p.Strategy != repair.All {
		fmt.Fprintf(w, "%s --strategy all takes every tensor from GOOD\n", st.Yellow("hint:"))
	}
	fmt.Fprintln(w)
	switch {
	case !p.Healthy:
		fmt.Fprintf(w, "%s the repaired checkpoint would still be unhealthy; nothing was written:\n", st.BoldRed("NOT REPAIRED:"))
		for _, why := range p.Unhealthy {
			fmt.Fprintf(w, "  - %s\n", safeText(why))
		}
	case dryRun:
		fmt.Fprintf(w, "%s nothing was written; the plan predicts a healthy result (%s of tensor data)\n", st.Bold("dry run:"), formats.HumanBytes(p.DataBytes()))
	case errors.Is(err, repair.ErrUnhealthy):
		fmt.Fprintf(w, "%s %s\n", st.BoldRed("NOT REPAIRED:"), safeText(err.Error()))
		if v := rep.Verification; v != nil {
			writeFindings(w, st, v.Findings, nil)
		}
	case err != nil:
		fmt.Fprintf(w, "%s nothing was written to %s\n", st.BoldRed("NOT REPAIRED:"), safeText(p.Out))
	case rep.Written:
		v := rep.Verification
		fmt.Fprintf(w, "%s %s scans healthy (%s, %d errors, %d warnings); all %d re-read tensors match their sources\n",
			st.BoldGreen("verified:"), safeText(p.Out), plural(v.Summary.Tensors, "tensor"), v.Summary.Errors, v.Summary.Warnings, v.Matched)
		fmt.Fprintf(w, "wrote %s (%s) in %.1f s; inputs hashed with SHA-256 into each file's provenance (__metadata__ %q)\n",
			safeText(p.Out), formats.HumanBytes(rep.Timings.BytesWritten),
			rep.Timings.ScanSeconds+rep.Timings.WriteSeconds+rep.Timings.VerifySeconds, repair.ProvenanceKey)
	}
	if p.ResumeAdvice != "" && (rep.Written || dryRun) {
		fmt.Fprintf(w, "%s %s\n", st.Bold("resume:"), safeText(p.ResumeAdvice))
	}
	if auto != nil && len(auto.Advice) > 0 && (rep.Written || dryRun) {
		for _, a := range auto.Advice {
			fmt.Fprintf(w, "%s %s\n", st.Bold("advice:"), safeText(a.Message))
		}
	}
}
