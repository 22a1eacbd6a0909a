package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/ckpt-tool/ckpt/inspect"
	"github.com/ckpt-tool/ckpt/optim"
)

// The optimizer view of scan and inspect: a checkpoint directory's
// optimizer.pt, or an optimizer file given directly (docs/optimizer.md).

// addUpdateWarnFlag adds --update-warn.
func addUpdateWarnFlag(fs *pflag.FlagSet, v *float64) {
	fs.Float64Var(v, "update-warn", optim.DefaultUpdateWarn, "warn when Adam's predicted next step would move a parameter by more than this fraction of its norm")
}

// validateUpdateWarn rejects a threshold that is not a positive number.
func validateUpdateWarn(v float64) error {
	if !(v > 0) {
		return usagef("give a positive number such as 0.1", "--update-warn must be positive, not %v", v)
	}
	return nil
}

// optimizerOf reads the optimizer state of r's checkpoint and runs its checks
// (every check when values is set, as scan does; the structural ones for
// inspect), adding the findings to r. It returns nil when the checkpoint holds
// no optimizer state.
func optimizerOf(ctx context.Context, r *inspect.Result, values bool, updateWarn float64) (*optim.State, error) {
	s, err := optim.Read(r.Checkpoint)
	if err != nil {
		addFindings(r, []inspect.Finding{{Severity: "warning", Check: optim.CheckOptimizer, File: r.Checkpoint.Path, Message: err.Error()}})
		return nil, nil
	}
	if s == nil {
		return nil, nil
	}
	var fs []inspect.Finding
	if values {
		if fs, err = s.Check(ctx, r, updateWarn); err != nil {
			return nil, err
		}
	} else {
		fs = s.Structure()
	}
	addFindings(r, fs)
	return s, nil
}

// addFindings adds findings to a result, keeping its order and summary.
func addFindings(r *inspect.Result, fs []inspect.Finding) {
	for _, f := range fs {
		switch f.Severity {
		case "error":
			r.Summary.Errors++
		case "warning":
			r.Summary.Warnings++
		}
	}
	r.Findings = append(r.Findings, fs...)
	inspect.SortFindings(r.Findings)
	r.Summary.Healthy = r.Summary.Errors == 0
}

// paramOfTensor maps the optimizer's state tensor names to their parameter's
// name (or "parameter <id>").
func paramOfTensor(s *optim.State) map[string]string {
	out := map[string]string{}
	if s == nil {
		return out
	}
	for _, p := range s.Params {
		for _, st := range p.State {
			if st.Tensor != nil {
				out[st.Tensor.Name] = p.Label()
			}
		}
	}
	return out
}

// writeOptimizerText prints the optimizer summary lines of scan and inspect.
func writeOptimizerText(w io.Writer, s *optim.State) {
	if s == nil {
		return
	}
	named := 0
	for _, p := range s.Params {
		if p.Name != nil {
			named++
		}
	}
	fmt.Fprintf(w, "optimizer: %s, %s in %s, %d named: %s\n", s.Algorithm, plural(len(s.Params), "parameter"), plural(len(s.Groups), "group"), named, safeText(s.Naming))
	if s.MaxUpdate != nil {
		fmt.Fprintf(w, "largest predicted update: %.3g of the norm of %s\n", *s.MaxUpdate, safeText(*s.MaxUpdateParam))
	}
}
