package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/ckpt-tool/ckpt/formats"
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
func optimizerOf(ctx context.Context, r *inspect.Result, values bool, updateWarn float64, opts inspect.Options) (*optim.State, error) {
	s, err := optim.Read(r.Checkpoint)
	return checkOptimizer(ctx, r, s, err, values, updateWarn, opts)
}

// scanWithOptimizer scans c; when c holds optimizer state, its moments and
// weights are read once for both the scan and the predicted update
// (optim.State.Scan), and the optimizer checks are run as optimizerOf runs
// them. It returns the scan and the optimizer state (nil when there is none).
func scanWithOptimizer(ctx context.Context, c *formats.Checkpoint, updateWarn float64, opts inspect.Options) (*inspect.Result, *optim.State, error) {
	s, rerr := optim.Read(c)
	var r *inspect.Result
	var err error
	if rerr == nil && s != nil {
		r, err = s.Scan(ctx, c, opts)
	} else {
		r, err = inspect.Scan(ctx, c, opts)
	}
	if err != nil {
		return nil, nil, err
	}
	s, err = checkOptimizer(ctx, r, s, rerr, true, updateWarn, opts)
	return r, s, err
}

// checkOptimizer is optimizerOf once optim.Read has returned s and err.
func checkOptimizer(ctx context.Context, r *inspect.Result, s *optim.State, err error, values bool, updateWarn float64, opts inspect.Options) (*optim.State, error) {
	if err != nil {
		addFindings(r, []inspect.Finding{{Severity: "warning", Check: optim.CheckOptimizer, File: r.Checkpoint.Path, Message: err.Error()}})
		return nil, nil
	}
	if s == nil {
		return nil, nil
	}
	var fs []inspect.Finding
	if values {
		s.ScanOptions = opts
		s.ScanOptions.Progress = nil
		if fs, err = s.Check(ctx, r, updateWarn); err != nil {
			return nil, err
		}
		if o := s.OwnScan; o != nil {
			// The optimizer file was scanned apart from the weights: its
			// tensors join the report.
			r.Tensors = append(r.Tensors, o.Tensors...)
			r.Summary.Tensors += o.Summary.Tensors
			r.Summary.Bytes += o.Summary.Bytes
			r.Summary.NonFiniteTensors += o.Summary.NonFiniteTensors
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
// name (or "parameter <id>"): the moments, and a step saved as a 0-d tensor
// (state.17.step).
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
		out[fmt.Sprintf("state.%d.step", p.ID)] = p.Label()
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

// repairResume is what repair says about resuming training: its output is for
// deployment (no optimizer state is copied), and which checkpoint to resume
// from, when one is known.
type repairResume struct {
	DeploymentOnly bool    `json:"deployment_only"`
	ResumeFrom     *string `json:"resume_from"`
	Reason         string  `json:"reason"`
}

// resumeAfterRepair decides where to resume: bisect's resume_from with --from
// auto; otherwise GOOD when its optimizer state scans sound (finite and
// consistent), which is checked here.
func resumeAfterRepair(ctx context.Context, good string, auto *repairAuto, opts inspect.Options) (*repairResume, error) {
	r := &repairResume{DeploymentOnly: true}
	const lead = "the repaired checkpoint is for deployment, not for resuming training (no optimizer state is copied into it)"
	if auto != nil && auto.Bisect != nil {
		rec := auto.Bisect.Recommendation
		if rec.ResumeFrom != nil {
			p := rec.ResumeFrom.Path
			r.ResumeFrom = &p
		}
		r.Reason = lead
		if rec.ResumeReason != "" {
			r.Reason += "; " + rec.ResumeReason
		} else {
			r.Reason += "; no checkpoint of the run holds optimizer state, so none can be resumed from"
		}
		return r, nil
	}
	c, err := formats.Open(good)
	if err != nil {
		return nil, err
	}
	s, err := optim.Read(c)
	if err != nil || s == nil {
		r.Reason = lead + fmt.Sprintf("; %s holds no optimizer state to resume from: start a new run from the repaired weights with a fresh optimizer and a warm-up", filepath.Base(good))
		return r, nil
	}
	var res *inspect.Result
	if s.OwnScan == nil {
		// The optimizer file is part of GOOD (beside its weights): scan it alone.
		oc, err := formats.Open(s.File)
		if err != nil {
			return nil, err
		}
		if res, err = inspect.Scan(ctx, oc, opts); err != nil {
			return nil, err
		}
		if s, err = optim.Read(oc); err != nil || s == nil {
			return nil, fmt.Errorf("%s: re-reading the optimizer state: %v", good, err)
		}
	}
	s.ScanOptions = opts
	fs, err := s.Check(ctx, res, 0)
	if err != nil {
		return nil, err
	}
	if res != nil {
		fs = append(fs, res.Findings...)
	}
	for _, f := range fs {
		if f.Severity == "error" {
			r.Reason = lead + fmt.Sprintf("; nor can training resume from %s: its optimizer state is not sound (%s); run 'ckpt bisect' on the run directory to find a checkpoint to resume from",
				filepath.Base(good), f.Message)
			return r, nil
		}
	}
	r.ResumeFrom = &good
	r.Reason = lead + fmt.Sprintf("; resume training from %s itself: its weights are healthy and its optimizer state is finite and consistent", filepath.Base(good))
	return r, nil
}
