// Command ckpt-synth makes synthetic checkpoints for benchmarks and manual
// testing: named real shapes, HF-Trainer-style diverging runs, and precise
// corruptions of generated files. It is a thin CLI over internal/synth.
//
//	ckpt-synth checkpoint --arch qwen2-0.5b --dtype bf16 --shards 2 -o DIR
//	ckpt-synth run --arch tiny -o RUNDIR
//	ckpt-synth corrupt set-values DIR --tensor NAME --elem 3=nan --elem 7=inf
//	ckpt-synth example --force     # regenerate testdata/example (run from the module root)
//
// Exit status: 0 done, 2 error.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/spf13/pflag"
)

type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"checkpoint": {"write a checkpoint directory of a named architecture", runCheckpoint},
	"run":        {"write a run directory of checkpoint-N/ dirs that drifts, then diverges to NaN", runRun},
	"corrupt":    {"damage a generated checkpoint in one precise way", runCorrupt},
	"example":    {"regenerate the committed examples (a checkpoint and a run)", runExample},
}

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	if err == nil || errors.Is(err, pflag.ErrHelp) {
		os.Exit(0)
	}
	fmt.Fprintf(os.Stderr, "ckpt-synth: error: %v\n", err)
	os.Exit(2)
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		w := stdout
		if len(args) == 0 {
			w = stderr
		}
		fmt.Fprintln(w, "ckpt-synth: synthetic checkpoints for benchmarks and manual testing\n\nUsage: ckpt-synth COMMAND [flags]\n\nCommands:")
		for _, n := range []string{"checkpoint", "run", "corrupt", "example"} {
			fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
		}
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	c, ok := commands[args[0]]
	if !ok {
		return fmt.Errorf("unknown command %q (run 'ckpt-synth --help')", args[0])
	}
	return c.run(args[1:], stdout, stderr)
}

func newFlagSet(name, usage string, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: ckpt-synth %s\n\nFlags:\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseDType accepts safetensors spellings (bf16, F32, f8_e4m3) and torch ones
// (bfloat16, float16, fp32).
func parseDType(s string) (formats.DType, error) {
	aliases := map[string]formats.DType{"bfloat16": formats.BF16, "float16": formats.F16, "fp16": formats.F16, "half": formats.F16,
		"float32": formats.F32, "fp32": formats.F32, "float": formats.F32, "float64": formats.F64, "fp64": formats.F64,
		"float8_e4m3fn": formats.F8_E4M3, "float8_e5m2": formats.F8_E5M2}
	if d, ok := aliases[strings.ToLower(s)]; ok {
		return d, nil
	}
	d := formats.DType(strings.ToUpper(s))
	if !d.InSafetensors() { // the generator writes safetensors (C128 is not one of its dtypes)
		return "", fmt.Errorf("unknown dtype %q", s)
	}
	return d, nil
}

// needArgs checks the number of positional arguments.
func needArgs(fs *pflag.FlagSet, n int, what string) error {
	if fs.NArg() != n {
		return fmt.Errorf("%s: expected %s, got %d arguments (run 'ckpt-synth %s --help')", fs.Name(), what, fs.NArg(), fs.Name())
	}
	return nil
}
