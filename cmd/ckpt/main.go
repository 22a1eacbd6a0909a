// Command ckpt is the forensics and repair tool for machine-learning checkpoints:
// inspect, scan, diff, bisect and repair safetensors checkpoints.
//
// main is small on purpose: run does the work and returns an error, and exitCode
// is the one place that maps errors to exit statuses (0 healthy, 1 findings,
// 2 the tool could not do its job).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/remote"
)

// version is set at build time with -ldflags "-X main.version=..."; "dev" otherwise.
var version = "dev"

// errFindings means the command ran and found something (exit 1). Its message is
// never printed: the findings already were.
var errFindings = errors.New("findings")

// errReported means the command already printed its diagnostics to stderr (for
// example one "ckpt: error:" line per unreadable PATH): exit 2, print nothing more.
var errReported = errors.New("already reported")

// hintedError is an error with advice on what to do, naming the flags that
// would help: library packages return typed errors and leave the command line
// to cmd/ckpt, which adds the hint here. It keeps the chain of the error it
// wraps, so errors.Is sees through it. On its own it is a command that was
// called correctly but could not do its job (exit 2: a refused repair, no
// GOOD to repair from).
type hintedError struct {
	err  error
	hint string
}

func (e *hintedError) Error() string { return e.err.Error() }
func (e *hintedError) Unwrap() error { return e.err }
func (e *hintedError) Hint() string  { return e.hint }

// usageError is a mistake in how ckpt was called (exit 2, with a hint).
type usageError struct{ hintedError }

// usagef is a usage error with a hint; format may wrap an error with %w.
func usagef(hint, format string, args ...any) error {
	return &usageError{hintedError{err: fmt.Errorf(format, args...), hint: hint}}
}

// reworded is err shown with a message of its own, its chain kept.
type reworded struct {
	msg string
	err error
}

func (e *reworded) Error() string { return e.msg }
func (e *reworded) Unwrap() error { return e.err }

// withHint attaches a hint to err (err itself when hint is empty).
func withHint(err error, hint string) error {
	if hint == "" {
		return err
	}
	return &hintedError{err: err, hint: hint}
}

// command is one subcommand; each lives in its own file and registers itself.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

func main() {
	watchSignals()
	err := readAheadFromEnv()
	if err == nil {
		err = run(os.Args[1:], os.Stdout, os.Stderr)
	}
	os.Exit(exitCode(err, os.Stderr))
}

// readAheadFromEnv applies CKPT_READAHEAD (none, sequential or willneed), the
// read-ahead hint of pread sources, which the cold-cache benchmark varies
// (COLD=1 bash bench/speed.sh, docs/performance.md).
func readAheadFromEnv() error {
	v := os.Getenv("CKPT_READAHEAD")
	if v == "" {
		return nil
	}
	r, err := formats.ParseReadAhead(v)
	if err != nil {
		return usagef("unset CKPT_READAHEAD or set it to none, sequential or willneed", "CKPT_READAHEAD: %w", err)
	}
	formats.SetReadAhead(r)
	return nil
}

// run dispatches to a subcommand. Tests call it directly.
func run(args []string, stdout, stderr io.Writer) error {
	remote.Register() // s3://, http(s)://, hf:// paths; each store reads its environment on first use
	if len(args) == 0 {
		printUsage(stderr)
		return usagef("", "no command given")
	}
	switch args[0] {
	case "-h", "--help", "help":
		printUsage(stdout)
		return nil
	case "-V", "--version", "version":
		fmt.Fprintf(stdout, "ckpt %s\n", version)
		return nil
	}
	c, ok := commands[args[0]]
	if !ok {
		return usagef("run 'ckpt --help' for the list of commands", "unknown command %q", args[0])
	}
	return c.run(args[1:], stdout, stderr)
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "ckpt: forensics and repair of machine-learning checkpoints (safetensors, PyTorch, GGUF)")
	fmt.Fprintln(w, "\nUsage: ckpt COMMAND [flags] PATH...")
	fmt.Fprintln(w, "\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nExit status: 0 healthy or nothing found, 1 findings (unhealthy, malformed, or different),")
	fmt.Fprintln(w, "2 the tool could not do its job, 130/143 stopped by SIGINT/SIGTERM. Run 'ckpt COMMAND --help' for a command's flags.")
}

// exitCode maps the error run returned to an exit status, printing diagnostics
// to stderr. It is the only place that decides exit statuses.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	if code, ok := interruptExit(err, stderr); ok {
		return code
	}
	if errors.Is(err, errFindings) {
		return 1
	}
	if errors.Is(err, errReported) {
		return 2
	}
	fmt.Fprintf(stderr, "ckpt: error: %s\n", safeText(strings.TrimSpace(err.Error())))
	var h interface{ Hint() string }
	if errors.As(err, &h) && h.Hint() != "" {
		fmt.Fprintf(stderr, "ckpt: hint: %s\n", safeText(h.Hint()))
	}
	return 2
}

// newFlagSet makes the flag set of one subcommand, as every subcommand wants it.
func newFlagSet(name, usage string, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: ckpt %s\n\nFlags:\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, turning a flag mistake into a usage error.
func parseFlags(fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return usagef("run 'ckpt "+fs.Name()+" --help'", "%w", err)
	}
	return nil
}
