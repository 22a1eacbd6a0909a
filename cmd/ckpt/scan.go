package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
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
}

func runScanCmd(args []string, stdout, stderr io.Writer) error {
	var o scanOptions
	fs := newFlagSet("scan", "scan [flags] PATH...", stderr)
	fs.BoolVar(&o.JSON, "json", false, "print one JSON object per PATH (the contract in the README)")
	fs.BoolVar(&o.Markdown, "markdown", false, "print a Markdown report (verdict, findings table, per-file summary) for a pull-request comment")
	fs.BoolVar(&o.All, "all", false, "list every tensor in the table, healthy ones included")
	fs.BoolVar(&o.Strict, "strict", false, "exit 1 on warnings too, not only on errors")
	fs.IntVarP(&o.Workers, "workers", "j", 0, "tensors read in parallel by this many goroutines (0: one per CPU)")
	fs.StringVar(&o.Source, "source", "pread", "how bytes are read: pread (streaming, the faster here) or mmap")
	fs.StringVar(&o.Color, "color", "auto", "colour the text output: "+colorModes+" (NO_COLOR turns it off)")
	fs.BoolVar(&o.NoProgress, "no-progress", false, "never draw the progress bar (it is drawn only when stderr is a terminal)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("run 'ckpt scan --help'", "scan needs at least one PATH (a .safetensors file or a checkpoint directory)")
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
		return opts, usagef("use --source pread or --source mmap", "%v", err)
	}
	opts.Workers = o.Workers
	opts.Source = src
	return opts, nil
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	first := true
	return forEachPath(paths, stderr, func(path string) (bool, error) {
		c, err := formats.Open(path)
		if err != nil {
			return false, err
		}
		bar := newByteProgress(stderr, scanBytes(c), "scan "+path, !o.NoProgress)
		opts := opts
		opts.Progress = bar.Add
		start := time.Now()
		r, err := inspect.Scan(ctx, c, opts)
		bar.Done()
		if err != nil {
			return false, err
		}
		elapsed := time.Since(start)
		switch {
		case o.JSON:
			err = writeJSON(stdout, scanReport(r))
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
		}
		first = false
		return !r.Healthy() || (o.Strict && r.Summary.Warnings > 0), err
	})
}
