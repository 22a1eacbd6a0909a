package main

import (
	"io"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
	"github.com/ckpt-tool/ckpt/optim"
	"github.com/ckpt-tool/ckpt/remote"
)

// ckpt scan: value-level health of checkpoints (every tensor's bytes are read).

func init() {
	register(command{
		name:    "scan",
		summary: "value-level health: non-finite counts, statistics, outlier norms",
		run:     runScanCmd,
	})
}

// scanOptions are the flags of ckpt scan.
type scanOptions struct {
	JSON       bool   // one JSON object per path (the DESIGN.md contract)
	Markdown   bool   // a Markdown report for a pull-request comment
	All        bool   // list every tensor, not only the unhealthy ones
	Strict     bool   // warnings fail the scan too (exit 1)
	Workers    int    // goroutines; 0 means all CPUs
	Source     string // pread or mmap
	Color      string // auto, always, never
	NoProgress bool   // never draw the progress bar
	Target     string // --target-dtype: the dtype the model will be served in
	JUnit      string // also write a JUnit XML report here
	UpdateWarn float64
	Thresholds inspect.Thresholds
	Part       string // --part K/N: scan one part and write a partial result for ckpt merge
}

func runScanCmd(args []string, stdout, stderr io.Writer) error {
	var o scanOptions
	fs := newFlagSet("scan", "scan [flags] PATH...", stderr)
	fs.BoolVar(&o.JSON, "json", false, "print one JSON object per PATH (the contract in the README)")
	fs.BoolVar(&o.Markdown, "markdown", false, "print a Markdown report (verdict, findings table, per-file summary) for a pull-request comment")
	fs.StringVar(&o.JUnit, "junit", "", "also write a JUnit XML report to `FILE` (a test suite per PATH, a test case per check) for GitLab, Jenkins and other CI")
	fs.BoolVar(&o.All, "all", false, "list every tensor in the table, healthy ones included")
	fs.BoolVar(&o.Strict, "strict", false, "exit 1 on warnings too, not only on errors")
	fs.IntVarP(&o.Workers, "workers", "j", 0, "goroutines reading and checking in parallel (0: one per CPU)")
	fs.StringVar(&o.Source, "source", "pread", "how bytes are read: pread (positioned reads into per-worker buffers) or mmap (a read-only memory map)")
	fs.StringVar(&o.Color, "color", "auto", "colour the text output: "+colorModes+" (NO_COLOR turns it off)")
	fs.BoolVar(&o.NoProgress, "no-progress", false, "never draw the progress bar (it is drawn only when stderr is a terminal)")
	fs.StringVar(&o.Target, "target-dtype", "", "the dtype the model will be served in; f16 makes values beyond the fp16 range errors, not warnings")
	fs.StringVar(&o.Part, "part", "", "scan only part `K/N` of the tensors (0 <= K < N, balanced by bytes) and write a partial result with --json for 'ckpt merge'")
	addThresholdFlags(fs, &o.Thresholds)
	addUpdateWarnFlag(fs, &o.UpdateWarn)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := validateUpdateWarn(o.UpdateWarn); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("run 'ckpt scan --help'", "scan needs at least one PATH (a .safetensors, PyTorch or .gguf file, or a checkpoint directory)")
	}
	if o.Part != "" {
		k, n, err := parsePart("part", o.Part)
		if err != nil {
			return err
		}
		return runScanPart(o, k, n, fs.Args(), stdout, stderr)
	}
	return runScan(o, fs.Args(), stdout, stderr)
}

// inspectOptions validates the flags and turns them into scan options.
func (o scanOptions) inspectOptions() (inspect.Options, error) {
	var opts inspect.Options
	if o.JSON && o.Markdown {
		return opts, usagef("pick one output format", "--json and --markdown cannot be used together")
	}
	if o.Workers < 0 {
		return opts, usagef("use -j 0 for one worker per CPU", "-j/--workers must be 0 or more, not %d", o.Workers)
	}
	src, err := formats.ParseSourceMode(o.Source)
	if err != nil {
		return opts, usagef("use --source pread or --source mmap", "--source: %w", err)
	}
	target, err := parseTargetDType(o.Target)
	if err != nil {
		return opts, err
	}
	if err := validateThresholds(o.Thresholds); err != nil {
		return opts, err
	}
	opts.Workers = o.Workers
	opts.Source = src
	opts.TargetDType = target
	opts.Thresholds = o.Thresholds
	return opts, nil
}

// addThresholdFlags exposes every outlier rule of inspect.Thresholds as a flag
// whose default is the documented one.
func addThresholdFlags(fs *pflag.FlagSet, th *inspect.Thresholds) {
	d := inspect.DefaultThresholds()
	fs.Float64Var(&th.HugeAbs, "huge-abs", d.HugeAbs, "a finite |value| above this is an error (uninitialised memory, a flipped exponent bit)")
	fs.Float64Var(&th.OutlierWarnZ, "outlier-warn-z", d.OutlierWarnZ, "warn when a tensor's RMS or absmax is this many robust deviations from the median of its role (its name across layers) and --outlier-warn-ratio times off")
	fs.Float64Var(&th.OutlierWarnRatio, "outlier-warn-ratio", d.OutlierWarnRatio, "warn only when the RMS or absmax also differs from its role's median by this factor")
	fs.Float64Var(&th.OutlierErrorZ, "outlier-error-z", d.OutlierErrorZ, "an outlier above its role's median by this many robust deviations and --outlier-error-ratio times is an error")
	fs.Float64Var(&th.OutlierErrorRatio, "outlier-error-ratio", d.OutlierErrorRatio, "an outlier is an error only when it is also this factor above its role's median")
	fs.IntVar(&th.RoleMinMembers, "role-min-members", d.RoleMinMembers, "compare the tensors of a role only when it has at least this many")
	fs.IntVar(&th.RoleMinElements, "role-min-elements", d.RoleMinElements, "leave tensors with fewer finite values out of role comparisons")
	fs.Float64Var(&th.MinSpread, "min-spread", d.MinSpread, "floor of the robust spread of ln(RMS) and ln(absmax) within a role")
	fs.BoolVar(&th.ZeroMatrixError, "zero-matrix-error", d.ZeroMatrixError, "report an all-zero 2-D weight matrix as an error, not a warning")
}

// validateThresholds rejects values that are not positive numbers (+Inf, which
// switches a rule off, is allowed): inspect would silently replace them by the
// default, which is not what someone who typed 0 meant.
func validateThresholds(th inspect.Thresholds) error {
	for _, f := range []struct {
		flag string
		v    float64
	}{
		{"--huge-abs", th.HugeAbs}, {"--outlier-warn-z", th.OutlierWarnZ}, {"--outlier-warn-ratio", th.OutlierWarnRatio},
		{"--outlier-error-z", th.OutlierErrorZ}, {"--outlier-error-ratio", th.OutlierErrorRatio}, {"--min-spread", th.MinSpread},
		{"--role-min-members", float64(th.RoleMinMembers)}, {"--role-min-elements", float64(th.RoleMinElements)},
	} {
		if !(f.v > 0) {
			return usagef("give a positive number, or inf to switch the rule off", "%s must be positive, not %v", f.flag, f.v)
		}
	}
	return nil
}

// parseTargetDType accepts a dtype name in any case ("f16", "BF16") or the
// PyTorch spelling ("float16", "bfloat16"); "" means unknown.
func parseTargetDType(s string) (formats.DType, error) {
	if s == "" {
		return "", nil
	}
	switch strings.ToLower(s) {
	case "fp16", "float16", "half":
		return formats.F16, nil
	case "bfloat16":
		return formats.BF16, nil
	case "fp32", "float32", "float":
		return formats.F32, nil
	}
	if d := formats.DType(strings.ToUpper(s)); d.Valid() && d.IsFloat() {
		return d, nil
	}
	return "", usagef("use --target-dtype f16, bf16 or f32", "unknown --target-dtype %q (want a float dtype such as f16, bf16, f32)", s)
}

// scanBytes is how many tensor bytes a scan of c reads (tensors cut short by
// the end of their file are not read).
func scanBytes(c *formats.Checkpoint) int64 {
	var n int64
	for _, t := range c.Tensors {
		if !t.Cut {
			n += t.Length()
		}
	}
	return n
}

// runScan scans each path and prints its report. A path that cannot be opened
// or read is an error (exit 2); unhealthy values and malformed files are
// findings (exit 1).
func runScan(o scanOptions, paths []string, stdout, stderr io.Writer) error {
	opts, err := o.inspectOptions()
	if err != nil {
		return err
	}
	color, err := useColor(o.Color, stdout)
	if err != nil {
		return err
	}
	st := styler{on: color}
	ctx, stop := signalContext()
	defer stop()
	first := true
	var suites []junitSuite
	err = forEachPath(paths, stderr, func(path string) (bool, error) {
		opened := time.Now()
		before := remote.Transferred()
		c, err := formats.Open(path)
		if err != nil {
			suites = append(suites, errorJUnitSuite(path, err, opened))
			return false, err
		}
		bar := newByteProgress(stderr, scanBytes(c), "scan "+path, !o.NoProgress).countNetwork(formats.IsRemote(path))
		opts := opts
		opts.Progress = bar.Add
		start := time.Now()
		r, opt, err := scanWithOptimizer(ctx, c, o.UpdateWarn, opts)
		bar.Done()
		if err != nil {
			suites = append(suites, errorJUnitSuite(path, err, opened))
			return false, err
		}
		elapsed := time.Since(start)
		suites = append(suites, scanJUnitSuite(path, r, o.Strict, opened, time.Since(opened)))
		var network *networkUse
		if formats.IsRemote(path) {
			network = networkSince(before)
		}
		err = writeScanReport(stdout, o, st, r, opt, network, elapsed, first)
		first = false
		return scanFailed(o, r), err
	})
	if o.JUnit != "" {
		if jerr := writeJUnit(o.JUnit, "ckpt scan", suites); jerr != nil {
			return jerr
		}
	}
	return err
}

// writeScanReport prints one scan in the format o asks for; first is false
// for every report after the first.
// network, for a remote path, is what reading it transferred (said in the
// text report).
func writeScanReport(stdout io.Writer, o scanOptions, st styler, r *inspect.Result, opt *optim.State, network *networkUse, elapsed time.Duration, first bool) error {
	switch {
	case o.JSON:
		return writeJSON(stdout, scanReportWithOptimizer(r, opt))
	case o.Markdown:
		if !first {
			io.WriteString(stdout, "\n")
		}
		writeScanMarkdown(stdout, r)
	default:
		if !first {
			io.WriteString(stdout, "\n")
		}
		writeScanText(stdout, st, r, o.All, elapsed)
		writeOptimizerText(stdout, opt)
		writeNetworkText(stdout, network)
	}
	return nil
}

// scanFailed reports whether a scan's findings fail it (exit 1).
func scanFailed(o scanOptions, r *inspect.Result) bool {
	return !r.Healthy() || (o.Strict && r.Summary.Warnings > 0)
}
