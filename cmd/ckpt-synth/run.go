package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/ckpt-tool/ckpt/internal/synth"
)

func runRun(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", "run --arch NAME -o RUNDIR [flags]", stderr)
	var m modelFlags
	m.add(fs, "element type", "shards per checkpoint", "PRNG seed")
	n := fs.Int("checkpoints", 14, "number of checkpoint-N dirs")
	save := fs.Int("save-steps", 100, "steps between checkpoints")
	logging := fs.Int("logging-steps", 10, "steps between log_history entries")
	jump := fs.Int("jump-step", 650, "steps after this one use the jumped learning rate")
	nanStep := fs.Int("nan-step", 1150, "first non-finite step; checkpoints from it on are NaN (-1: never)")
	filter := fs.Bool("nan-filter", false, "hide NaN losses from the log as logging_nan_inf_filter does")
	asJSON := fs.Bool("json", false, "print the ground truth as JSON")
	out := fs.StringP("output", "o", "", "run directory to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := needArgs(fs, 0, "no arguments"); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("run: -o RUNDIR is required")
	}
	a, dt, err := m.resolve()
	if err != nil {
		return err
	}
	o := synth.RunOptions{Arch: a, DType: dt, Seed: m.seed, Shards: m.shards, Checkpoints: *n, SaveSteps: *save,
		LoggingSteps: *logging, JumpStep: *jump, NaNStep: *nanStep, NaNFilter: *filter}
	if _, err := synth.WriteRun(*out, o); err != nil {
		return err
	}
	t, err := o.Truth()
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(t)
	}
	fmt.Fprintf(stdout, "%s: %d checkpoints, steps %d..%d\n", *out, len(t.Steps), t.Steps[0], t.Steps[len(t.Steps)-1])
	fmt.Fprintf(stdout, "learning rate jumps after step %d; drift onset between checkpoint-%d and checkpoint-%d\n", t.JumpStep, t.DriftFrom, t.DriftTo)
	if t.FirstUnhealthy != 0 {
		fmt.Fprintf(stdout, "last healthy checkpoint-%d, first NaN checkpoint-%d; first non-finite grad_norm logged at step %d\n",
			t.LastHealthy, t.FirstUnhealthy, t.FirstNonFiniteGradNormStep)
	} else {
		fmt.Fprintln(stdout, "no divergence: every checkpoint is finite")
	}
	return nil
}
