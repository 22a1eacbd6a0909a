package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/ckpt-tool/ckpt/formats"
)

// Running a command over several PATH arguments, shared by inspect and scan
// (and usable by any command that takes a list of checkpoints).

// pathError is a checkpoint path the command could not handle at all (missing,
// unreadable, a directory without weights, an I/O error mid-read). It prints as
// "<path>: <what>", naming the path once.
type pathError struct {
	Path string
	Err  error
}

func (e *pathError) Error() string {
	var pe *fs.PathError
	if errors.As(e.Err, &pe) {
		if pe.Path == e.Path {
			return e.Path + ": " + pe.Err.Error()
		}
		return e.Path + ": " + pe.Path + ": " + pe.Err.Error()
	}
	msg := e.Err.Error()
	if strings.HasPrefix(msg, e.Path+":") {
		return msg
	}
	return e.Path + ": " + msg
}

func (e *pathError) Unwrap() error { return e.Err }

// hint is a suggestion printed after the error, "" when none helps.
func (e *pathError) hint() string {
	switch {
	case errors.Is(e.Err, formats.ErrNoWeights):
		return "give a .safetensors or PyTorch (.bin/.pt/.pth) file, or a checkpoint directory holding model.safetensors, pytorch_model.bin or a sharded index and its shards"
	case errors.Is(e.Err, fs.ErrNotExist):
		return "check the path; ckpt takes a .safetensors or PyTorch file, or a checkpoint directory"
	}
	return ""
}

// reportedErrors is what a multi-path command returns when some paths failed:
// their diagnostics are already on stderr, so main only sets exit status 2.
// errors.Is sees errReported and every path's own error.
type reportedErrors struct{ errs []error }

func (r *reportedErrors) Error() string {
	msgs := make([]string, len(r.errs))
	for i, e := range r.errs {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

func (r *reportedErrors) Unwrap() []error { return append([]error{errReported}, r.errs...) }

// forEachPath calls fn on each path in order. A path fn cannot handle (fn
// returns an error) is reported at once on stderr as "ckpt: error: <path>:
// <what>" (with a hint when one helps) and the other paths still run. The result
// is nil when every path was handled and healthy, errFindings when some had
// findings (fn returned true), and a *reportedErrors (exit 2) when some path
// failed, whatever the others found.
func forEachPath(paths []string, stderr io.Writer, fn func(path string) (findings bool, err error)) error {
	var failed []error
	anyFindings := false
	for _, p := range paths {
		found, err := fn(p)
		if err != nil {
			pe := &pathError{Path: p, Err: err}
			fmt.Fprintf(stderr, "ckpt: error: %s\n", safeText(pe.Error()))
			if h := pe.hint(); h != "" {
				fmt.Fprintf(stderr, "ckpt: hint: %s\n", h)
			}
			failed = append(failed, pe)
			continue
		}
		anyFindings = anyFindings || found
	}
	switch {
	case len(failed) > 0:
		return &reportedErrors{errs: failed}
	case anyFindings:
		return errFindings
	}
	return nil
}
