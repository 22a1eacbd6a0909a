package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

func runCheckpoint(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("checkpoint", "checkpoint --arch NAME -o DIR [flags]", stderr)
	var m modelFlags
	m.add(fs, "element type: bf16, f16, f32, f64, f8_e4m3, f8_e5m2", "number of shards (1: a single model.safetensors)",
		"PRNG seed: the same seed gives the same bytes")
	scale := fs.Float64("scale", 1, "multiply every value (a finite but exploded checkpoint)")
	out := fs.StringP("output", "o", "", "directory to write (created if missing)")
	force := fs.Bool("force", false, "replace existing weight files")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := needArgs(fs, 0, "no arguments"); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("checkpoint: -o DIR is required")
	}
	a, dt, err := m.resolve()
	if err != nil {
		return err
	}
	o := synth.Options{Arch: a, DType: dt, Seed: m.seed, Shards: m.shards, Scale: *scale, Overwrite: *force}
	if err := synth.WriteCheckpoint(*out, o); err != nil {
		return err
	}
	return describe(stdout, *out)
}

func runExample(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("example", "example [-o DIR] [--force]", stderr)
	out := fs.StringP("output", "o", filepath.FromSlash(synth.ExampleRoot), "directory to write the examples into (DIR/tiny-qwen2 and DIR/run)")
	force := fs.Bool("force", false, "replace existing weight files")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := needArgs(fs, 0, "no arguments"); err != nil {
		return err
	}
	if err := synth.WriteExamples(*out, *force); err != nil {
		return err
	}
	if err := describe(stdout, filepath.Join(*out, filepath.Base(synth.ExampleDir))); err != nil {
		return err
	}
	run := filepath.Join(*out, filepath.Base(synth.ExampleRunDir))
	fmt.Fprintf(stdout, "%s: %d checkpoints\n", run, synth.ExampleRun.Checkpoints)
	return nil
}

// describe prints one line about what was written.
func describe(w io.Writer, dir string) error {
	c, err := formats.Open(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: %d files, %d tensors, %s\n", dir, len(c.Files), len(c.Tensors), formats.HumanBytes(c.TotalBytes()))
	return nil
}
