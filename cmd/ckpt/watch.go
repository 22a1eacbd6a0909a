package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ckpt-tool/ckpt/diff"
	"github.com/ckpt-tool/ckpt/inspect"
	"github.com/ckpt-tool/ckpt/watch"
)

// ckpt watch: follow a training run as the trainer writes it.

func init() {
	register(command{
		name:    "watch",
		summary: "follow a training run: check each new checkpoint, report drift and damage, keep the last good one",
		run: func(args []string, stdout, stderr io.Writer) error {
			ctx, stop := signalContext()
			defer stop()
			return runWatchCmd(ctx, args, stdout, stderr)
		},
	})
}

// watchOptions are the flags of ckpt watch.
type watchOptions struct {
	JSON        bool
	Once        bool
	NewOnly     bool
	Settle      time.Duration
	Poll        time.Duration
	Keep        string
	KeepCopy    bool
	OnUnhealthy string
	ExitOn      string
	OnsetFactor float64
	Workers     int
}

// runWatchCmd parses the flags and watches until ctx is done (SIGINT or
// SIGTERM: exit 0), --exit-on sees its event (exit 1) or, with --once, the
// checkpoints present are checked (exit 1 when one is unhealthy).
func runWatchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o watchOptions
	fs := newFlagSet("watch", "watch [flags] RUN_DIR", stderr)
	fs.BoolVar(&o.JSON, "json", false, "print one JSON object per event (JSON Lines)")
	fs.BoolVar(&o.Once, "once", false, "check the complete checkpoints there now and exit (for cron or a post-save hook); exit 1 if one is unhealthy")
	fs.BoolVar(&o.NewOnly, "new-only", false, "check only checkpoints saved from now on, not those already there (a run resumed into the directory of its failed attempt)")
	fs.DurationVar(&o.Settle, "settle", 0, "for trainers that write no trainer_state.json: a checkpoint is complete once nothing in it changed for `DURATION` (e.g. 30s)")
	fs.DurationVar(&o.Poll, "poll", 0, "look at the run directory every `INTERVAL` instead of using file-system notifications (e.g. 5s, for network file systems)")
	fs.StringVar(&o.Keep, "keep", "", "keep the newest healthy checkpoint and the last one before a drift onset in `DIR`, out of the trainer's rotation (hard links on the same file system, verified copies otherwise)")
	fs.BoolVar(&o.KeepCopy, "keep-copy", false, "with --keep, copy the bytes even where hard links would do")
	fs.StringVar(&o.OnUnhealthy, "on-unhealthy", "", "run the shell command `CMD` (sh -c) for each unhealthy checkpoint, with the event as JSON on stdin and CKPT_STEP, CKPT_PATH in the environment")
	fs.StringVar(&o.ExitOn, "exit-on", "", "stop with exit status 1 at `EVENT`: unhealthy (the first unhealthy checkpoint) or drift (the drift onset)")
	fs.Float64Var(&o.OnsetFactor, "onset-factor", diff.DefaultOnsetFactor, "drift onset: the first update this many times the median of the earlier ones")
	fs.IntVarP(&o.Workers, "workers", "j", 0, "goroutines per scan and comparison (0: one per CPU)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("run 'ckpt watch --help'", "watch needs exactly one RUN_DIR (the trainer's output directory, where checkpoint-N directories appear)")
	}
	switch {
	case o.ExitOn != "" && o.ExitOn != "unhealthy" && o.ExitOn != "drift":
		return usagef("use --exit-on unhealthy or --exit-on drift", "unknown --exit-on %q", o.ExitOn)
	case o.Settle < 0 || o.Poll < 0:
		return usagef("give a duration such as 30s", "--settle and --poll must not be negative")
	case o.Workers < 0 || !(o.OnsetFactor > 1):
		return usagef("run 'ckpt watch --help'", "-j must be 0 or more and --onset-factor above 1")
	case o.KeepCopy && o.Keep == "":
		return usagef("add --keep DIR", "--keep-copy needs --keep")
	}
	err := runWatch(ctx, o, fs.Arg(0), stdout, stderr)
	if err == nil && ctx.Err() != nil && received.Load() != nil {
		// Stopped by a signal: the exit status says so (128+n), as for
		// every command.
		return &interruptedError{msg: "watch stopped; every event before the signal was printed", err: ctx.Err()}
	}
	return err
}

// errStopOn is what Emit returns to stop the watch for --exit-on.
var errStopOn = errors.New("stop")

func runWatch(ctx context.Context, o watchOptions, runDir string, stdout, stderr io.Writer) error {
	unhealthy := false
	opts := watch.Options{Settle: o.Settle, Poll: o.Poll, Once: o.Once, NewOnly: o.NewOnly, Keep: o.Keep, KeepCopy: o.KeepCopy, OnsetFactor: o.OnsetFactor,
		Scan: inspect.Options{Workers: o.Workers}, Diff: diff.Options{Workers: o.Workers}}
	opts.Log = func(format string, args ...any) {
		fmt.Fprintf(stderr, "ckpt watch: %s\n", safeText(fmt.Sprintf(format, args...)))
	}
	opts.Emit = func(ev watch.Event) error {
		var err error
		if o.JSON {
			err = writeJSON(stdout, ev)
		} else {
			_, err = io.WriteString(stdout, watchEventText(ev)+"\n")
		}
		if err != nil {
			return err
		}
		switch ev := ev.(type) {
		case *watch.UnhealthyEvent:
			unhealthy = true
			if o.OnUnhealthy != "" {
				runHook(ctx, o.OnUnhealthy, ev, stderr)
			}
			if o.ExitOn == "unhealthy" {
				return errStopOn
			}
		case *watch.OnsetEvent:
			if o.ExitOn == "drift" {
				return errStopOn
			}
		}
		return nil
	}
	err := watch.Run(ctx, runDir, opts)
	switch {
	case errors.Is(err, errStopOn):
		return errFindings
	case err != nil:
		return &pathError{Path: runDir, Err: err}
	case o.Once && unhealthy:
		return errFindings
	}
	return nil
}

// runHook runs the --on-unhealthy command with the event on stdin. Its
// output goes to stderr (stdout is the watch's event stream); a failure is
// reported and the watch goes on.
func runHook(ctx context.Context, command string, ev *watch.UnhealthyEvent, stderr io.Writer) {
	data, err := json.Marshal(ev)
	if err != nil {
		fmt.Fprintf(stderr, "ckpt watch: --on-unhealthy: %v\n", err)
		return
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Stdin = bytes.NewReader(append(data, '\n'))
	cmd.Stdout, cmd.Stderr = stderr, stderr
	cmd.Env = append(os.Environ(), "CKPT_STEP="+strconv.Itoa(ev.Step), "CKPT_PATH="+ev.Path, "CKPT_EVENT="+watch.KindUnhealthy)
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(stderr, "ckpt watch: --on-unhealthy command failed for step %d: %v\n", ev.Step, err)
	}
}

// watchEventText is the one-line text form of an event.
func watchEventText(ev watch.Event) string {
	switch ev := ev.(type) {
	case *watch.CheckpointEvent:
		s := fmt.Sprintf("step %d %s: %s", ev.Step, safeText(filepath.Base(ev.Path)), ev.Verdict)
		if ev.RelUpdate != nil {
			s += ", update " + relText(ev.RelUpdate)
			if ev.UpdateRatio != nil {
				s += fmt.Sprintf(" (%s× the median before)", strconv.FormatFloat(*ev.UpdateRatio, 'g', 3, 64))
			}
		}
		errs, warns := 0, 0
		for _, f := range ev.Findings {
			if f.Severity == "error" {
				errs++
			} else {
				warns++
			}
		}
		if errs+warns > 0 {
			s += fmt.Sprintf(", %s, %s", plural(errs, "error"), plural(warns, "warning"))
		}
		return s
	case *watch.OnsetEvent:
		return fmt.Sprintf("DRIFT ONSET between step %d and step %d: relative update %s, %s× the median (%s) of the intervals before",
			ev.FromStep, ev.ToStep, relText(&ev.RelUpdate), ev.FactorText(), relText(&ev.Baseline))
	case *watch.UnhealthyEvent:
		var parts []string
		for i, c := range ev.Culprits {
			if i == 3 {
				parts = append(parts, fmt.Sprintf("… %d more", len(ev.Culprits)-3))
				break
			}
			what := c.Tensor
			if what == "" {
				what = filepath.Base(c.File)
			}
			parts = append(parts, fmt.Sprintf("%s %s: %s", c.Check, what, c.Message))
		}
		return safeText(fmt.Sprintf("UNHEALTHY step %d %s: %s", ev.Step, ev.Path, strings.Join(parts, "; ")))
	case *watch.LogEvent:
		return safeText(fmt.Sprintf("training log: step %d %s: %s", ev.Step, ev.Kind, ev.Message))
	case *watch.KeptEvent:
		how := "hard links, no bytes copied"
		if ev.Method == "copy" {
			how = "a verified copy"
		}
		var why []string
		for _, r := range ev.Reasons {
			switch r {
			case watch.ReasonNewestHealthy:
				why = append(why, "the newest healthy checkpoint")
			case watch.ReasonBeforeDrift:
				why = append(why, "the last checkpoint before the drift onset")
			default:
				why = append(why, r)
			}
		}
		s := fmt.Sprintf("kept step %d %s as %s (%s): %s", ev.Step, ev.Path, ev.Copy, how, strings.Join(why, " and "))
		if len(ev.Released) > 0 {
			s += "; released " + strings.Join(ev.Released, ", ")
		}
		return safeText(s)
	}
	return fmt.Sprintf("%v", ev)
}
