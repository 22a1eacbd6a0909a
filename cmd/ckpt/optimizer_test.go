package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/internal/testenv"
)

// TestOptimizerScanAndInspect: scan and inspect of Trainer checkpoints
// written by torch report the optimizer object (every parameter named by the
// Trainer's order), name the parameter of each state tensor, and turn the
// poisoned optimizers into findings: a NaN in exp_avg of healthy weights is an
// error naming the parameter, --update-warn makes large predicted steps
// warnings, and an optimizer.pt given directly is read with the names of the
// weights beside it.
func TestOptimizerScanAndInspect(t *testing.T) {
	dir := t.TempDir()
	testenv.WriteTrainerCheckpoints(t, dir)
	type doc struct {
		Findings  []struct{ Severity, Check, Message string }
		Tensors   []struct{ Name, Param string }
		Summary   struct{ Healthy bool }
		Optimizer *struct {
			Algorithm string
			Groups    []struct {
				LR     float64
				Params []int64
			}
			Params []struct {
				ID          int64
				Name        *string
				NameSource  *string `json:"name_source"`
				Nonfinite   *uint64
				UpdateRatio *float64 `json:"update_ratio"`
			}
		}
	}
	get := func(wantCode int, args ...string) doc {
		t.Helper()
		r := cliRun(t, args...)
		if r.code != wantCode {
			t.Fatalf("%v: exit %d, want %d\n%s%s", args, r.code, wantCode, r.stdout, r.stderr)
		}
		var d doc
		if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if d.Optimizer == nil {
			t.Fatalf("%v: no optimizer object", args)
		}
		return d
	}
	d := get(0, "scan", "--json", filepath.Join(dir, "checkpoint-6"))
	if d.Optimizer.Algorithm != "adam" || len(d.Optimizer.Groups) != 2 || len(d.Optimizer.Params) != 27 {
		t.Errorf("optimizer %+v", d.Optimizer)
	}
	for _, p := range d.Optimizer.Params {
		if p.Name == nil || *p.NameSource != "order" || p.Nonfinite == nil || *p.Nonfinite != 0 || p.UpdateRatio == nil {
			t.Errorf("param %d: %+v", p.ID, p)
		}
	}
	params := 0
	for _, tt := range d.Tensors {
		if tt.Name == "optimizer.pt/state.22.exp_avg" && tt.Param != "model.layers.1.self_attn.k_proj.bias" {
			t.Errorf("%s: param %q", tt.Name, tt.Param)
		}
		if tt.Param != "" {
			params++
		}
	}
	if params != 2*27 {
		t.Errorf("%d tensors name their parameter, want %d (exp_avg and exp_avg_sq of 27)", params, 2*27)
	}

	d = get(1, "scan", "--json", filepath.Join(dir, "poison-nan"))
	found := false
	for _, f := range d.Findings {
		if f.Severity == "error" && f.Check == "nonfinite" && strings.HasPrefix(f.Message, "exp_avg of model.layers.1.self_attn.k_proj.bias holds 2 NaN") {
			found = true
		}
	}
	if !found || d.Summary.Healthy {
		t.Errorf("poisoned exp_avg: %+v", d.Findings)
	}

	d = get(0, "scan", "--json", "--update-warn", "0.02", filepath.Join(dir, "checkpoint-6"))
	warned := 0
	for _, f := range d.Findings {
		if f.Check == "optimizer" && f.Severity == "warning" && strings.Contains(f.Message, "the next Adam step would move") {
			warned++
		}
	}
	if warned == 0 {
		t.Errorf("--update-warn 0.02 warns about nothing: %+v", d.Findings)
	}

	d = get(1, "inspect", "--json", filepath.Join(dir, "poison-shape", "optimizer.pt"))
	if len(d.Findings) == 0 || !strings.Contains(d.Findings[0].Message, "has shape [4 8] but the parameter has shape [8 8]") {
		t.Errorf("inspect of a mismatched optimizer.pt: %+v", d.Findings)
	}
	if p := d.Optimizer.Params[1]; p.Name == nil || *p.Name != "model.layers.0.self_attn.q_proj.weight" || p.Nonfinite != nil || p.UpdateRatio != nil {
		t.Errorf("inspect: param 1 %+v (inspect reads no values)", p)
	}
	r := cliRun(t, "scan", "--update-warn", "0", filepath.Join(dir, "checkpoint-6"))
	if r.code != 2 || !strings.Contains(r.stderr, "--update-warn must be positive") {
		t.Errorf("--update-warn 0: exit %d %s", r.code, r.stderr)
	}
}
