package main

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkOptimizerScanAndInspect: scan and inspect of Trainer checkpoints
// written by torch report the optimizer object (every parameter named by the
// Trainer's order), name the parameter of each state tensor, and turn the
// poisoned optimizers into findings: a NaN in exp_avg of healthy weights is an
// error naming the parameter, --update-warn makes large predicted steps
// warnings, and an optimizer.pt given directly is read with the names of the
// weights beside it.
func checkOptimizerScanAndInspect(t *testing.T, fx string) {
	dir := fx
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
		if tt.Name == "state.22.exp_avg" && tt.Param != "model.layers.1.self_attn.k_proj.bias" {
			t.Errorf("%s: param %q", tt.Name, tt.Param)
		}
		if tt.Param != "" {
			params++
		}
	}
	if params != 3*27 {
		t.Errorf("%d tensors name their parameter, want %d (step, exp_avg and exp_avg_sq of 27)", params, 3*27)
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

// copyTree copies the files of the directory src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// checkBisectLastResumable: in a run whose newest checkpoint has healthy
// weights and a NaN in exp_avg, bisect keeps it as last_healthy, reports the
// checkpoint before as last_resumable and resume_from, says in one line that
// the newest one's weights are healthy and its optimizer poisoned, and gives
// each checkpoint's largest predicted update.
func checkBisectLastResumable(t *testing.T, fx string) {
	run := t.TempDir()
	copyTree(t, filepath.Join(fx, "checkpoint-3"), filepath.Join(run, "checkpoint-3"))
	copyTree(t, filepath.Join(fx, "poison-nan"), filepath.Join(run, "checkpoint-6"))
	r := cliRun(t, "bisect", "--json", run)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var rep struct {
		LastHealthy   *struct{ Path string } `json:"last_healthy"`
		LastResumable *struct {
			Path string
			Step int
		} `json:"last_resumable"`
		Checkpoints []struct {
			Step      int
			Resumable *bool
			MaxUpdate *float64 `json:"max_update_ratio"`
		}
		Recommendation struct {
			ResumeFrom   *struct{ Path string } `json:"resume_from"`
			ResumeReason string                 `json:"resume_reason"`
		}
		Notes []string
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.LastHealthy == nil || filepath.Base(rep.LastHealthy.Path) != "checkpoint-6" {
		t.Errorf("last_healthy %+v, want checkpoint-6 (its weights are healthy)", rep.LastHealthy)
	}
	if rep.LastResumable == nil || filepath.Base(rep.LastResumable.Path) != "checkpoint-3" || rep.LastResumable.Step != 3 {
		t.Errorf("last_resumable %+v, want checkpoint-3", rep.LastResumable)
	}
	if rep.Recommendation.ResumeFrom == nil || filepath.Base(rep.Recommendation.ResumeFrom.Path) != "checkpoint-3" ||
		!strings.Contains(rep.Recommendation.ResumeReason, "not from checkpoint-6 (weights healthy, optimizer state poisoned: exp_avg of model.layers.1.self_attn.k_proj.bias holds 2 NaN") {
		t.Errorf("recommendation %+v", rep.Recommendation)
	}
	lines := 0
	for _, n := range rep.Notes {
		if strings.HasPrefix(n, "checkpoint-6: weights healthy, optimizer state poisoned") {
			lines++
		}
	}
	if lines != 1 {
		t.Errorf("notes %q: want one line saying checkpoint-6's optimizer is poisoned", rep.Notes)
	}
	for _, c := range rep.Checkpoints {
		if c.Resumable == nil || *c.Resumable != (c.Step == 3) || c.MaxUpdate == nil {
			t.Errorf("checkpoint %d: resumable %v, max update %v", c.Step, c.Resumable, c.MaxUpdate)
		}
	}
	text := cliRun(t, "bisect", run)
	if !strings.Contains(text.stdout, "RESUME: resume training from checkpoint-3") {
		t.Errorf("text output:\n%s", text.stdout)
	}
}

// safetensorsRun builds a run directory of the trainer fixtures with
// safetensors weights (converted by ckpt convert) beside their training
// state, for the commands that take safetensors only (repair).
func safetensorsRun(t *testing.T, fx string, names ...string) string {
	t.Helper()
	run := t.TempDir()
	for _, n := range names {
		d := filepath.Join(run, n)
		copyTree(t, filepath.Join(fx, n), d)
		if r := cliRun(t, "convert", filepath.Join(d, "pytorch_model.bin"), "-o", filepath.Join(d, "model.safetensors")); r.code != 0 {
			t.Fatalf("convert %s: %s%s", n, r.stdout, r.stderr)
		}
		if err := os.Remove(filepath.Join(d, "pytorch_model.bin")); err != nil {
			t.Fatal(err)
		}
	}
	return run
}

// poisonWeight writes a NaN over the first element of an F32 tensor of a
// .safetensors file.
func poisonWeight(t *testing.T, path, tensor string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := int(binary.LittleEndian.Uint64(b))
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	var info struct {
		Offsets []int `json:"data_offsets"`
	}
	if err := json.Unmarshal(hdr[tensor], &info); err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint32(b[8+n+info.Offsets[0]:], 0x7fc00000)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkRepairSaysWhereToResume: repair's output is for deployment, and it
// names the checkpoint to resume from: GOOD when its optimizer state is sound,
// none when GOOD's optimizer holds NaN.
func checkRepairSaysWhereToResume(t *testing.T, fx string) {
	run := safetensorsRun(t, fx, "checkpoint-3", "checkpoint-6")
	bad, good := filepath.Join(run, "checkpoint-6"), filepath.Join(run, "checkpoint-3")
	poisonWeight(t, filepath.Join(bad, "model.safetensors"), "model.layers.1.mlp.down_proj.weight")
	type out struct {
		Resume *struct {
			DeploymentOnly bool    `json:"deployment_only"`
			ResumeFrom     *string `json:"resume_from"`
			Reason         string
		}
	}
	repairJSON := func(o string) out {
		t.Helper()
		r := cliRun(t, "repair", "--json", bad, "--from", good, "-o", filepath.Join(run, o))
		if r.code != 0 {
			t.Fatalf("repair: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		var d out
		if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
			t.Fatal(err)
		}
		if d.Resume == nil || !d.Resume.DeploymentOnly || !strings.Contains(d.Resume.Reason, "for deployment, not for resuming training") {
			t.Fatalf("resume %+v", d.Resume)
		}
		return d
	}
	d := repairJSON("out1")
	if d.Resume.ResumeFrom == nil || *d.Resume.ResumeFrom != good {
		t.Errorf("resume_from %v, want %s (%s)", d.Resume.ResumeFrom, good, d.Resume.Reason)
	}
	text := cliRun(t, "repair", bad, "--from", good, "-o", filepath.Join(run, "out2"))
	if !strings.Contains(text.stdout, "deployment: the repaired checkpoint is for deployment") || !strings.Contains(text.stdout, "resume training from checkpoint-3 itself") {
		t.Errorf("text output:\n%s", text.stdout)
	}
	// GOOD's optimizer poisoned: nothing to resume from.
	b, err := os.ReadFile(filepath.Join(fx, "poison-nan", "optimizer.pt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(good, "optimizer.pt"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	d = repairJSON("out3")
	if d.Resume.ResumeFrom != nil || !strings.Contains(d.Resume.Reason, "nor can training resume from checkpoint-3") || !strings.Contains(d.Resume.Reason, "holds 2 NaN") {
		t.Errorf("GOOD with a poisoned optimizer: %+v", d.Resume)
	}
}

// checkBisectReportPlotsPredictedUpdate: the HTML report of a run with
// optimizer state plots the largest predicted update of each checkpoint and
// says where to resume.
func checkBisectReportPlotsPredictedUpdate(t *testing.T, fx string) {
	run := t.TempDir()
	copyTree(t, filepath.Join(fx, "checkpoint-3"), filepath.Join(run, "checkpoint-3"))
	copyTree(t, filepath.Join(fx, "poison-nan"), filepath.Join(run, "checkpoint-6"))
	page := filepath.Join(t.TempDir(), "report.html")
	if r := cliRun(t, "bisect", "--report", page, run); r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)
	for _, want := range []string{`aria-label="largest predicted Adam update`, "<strong>Resume:</strong> resume training from checkpoint-3"} {
		if !strings.Contains(html, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}

// TestOptimizerCommands runs the optimizer checks of scan, inspect, bisect,
// its report and repair on one set of Trainer checkpoints written by torch.
func TestOptimizerCommands(t *testing.T) {
	fx := trainerCheckpoints(t)
	t.Run("scan-inspect", func(t *testing.T) { checkOptimizerScanAndInspect(t, fx) })
	t.Run("bisect", func(t *testing.T) { checkBisectLastResumable(t, fx) })
	t.Run("report", func(t *testing.T) { checkBisectReportPlotsPredictedUpdate(t, fx) })
	t.Run("repair", func(t *testing.T) { checkRepairSaysWhereToResume(t, fx) })
	t.Run("trainer-layouts", func(t *testing.T) { checkTrainerLayoutsAgree(t, fx) })
}

// checkTrainerLayoutsAgree: a Trainer checkpoint with safetensors weights and
// one with pytorch_model.bin, optimizer.pt beside each, are reported alike by
// inspect, scan, diff and merge: every state tensor under its key path
// (state.22.exp_avg, never prefixed by its file), in optimizer.pt, naming its
// parameter; inspect lists the tensors scan scans; and the merge of a split
// scan is the one-process report byte for byte, optimizer object included.
func checkTrainerLayoutsAgree(t *testing.T, fx string) {
	run := safetensorsRun(t, fx, "checkpoint-3", "checkpoint-6", "poison-nan")
	type doc struct {
		Tensors []struct {
			Name, File, Param string
		}
		Optimizer *struct{ File string }
	}
	read := func(args ...string) (doc, string) {
		t.Helper()
		r := cliRun(t, args...)
		if r.code != 0 && r.code != 1 {
			t.Fatalf("%v: exit %d\n%s", args, r.code, r.stderr)
		}
		var d doc
		if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return d, r.stdout
	}
	for _, ckpt := range []string{filepath.Join(run, "checkpoint-6"), filepath.Join(run, "poison-nan"), filepath.Join(fx, "checkpoint-6")} {
		ins, _ := read("inspect", "--json", ckpt)
		sc, _ := read("scan", "--json", "--no-progress", ckpt)
		for what, d := range map[string]doc{"inspect": ins, "scan": sc} {
			if d.Optimizer == nil || filepath.Base(d.Optimizer.File) != "optimizer.pt" {
				t.Errorf("%s %s: optimizer object %+v", what, ckpt, d.Optimizer)
			}
			state := 0
			for _, tn := range d.Tensors {
				if strings.Contains(tn.Name, "/") {
					t.Errorf("%s %s: tensor %q is prefixed by its file", what, ckpt, tn.Name)
				}
				if strings.HasPrefix(tn.Name, "state.") {
					state++
					if filepath.Base(tn.File) != "optimizer.pt" || tn.Param == "" {
						t.Errorf("%s %s: %s in %s, param %q", what, ckpt, tn.Name, tn.File, tn.Param)
					}
				}
				if tn.Name == "state.22.exp_avg" && tn.Param != "model.layers.1.self_attn.k_proj.bias" {
					t.Errorf("%s %s: %s names %q", what, ckpt, tn.Name, tn.Param)
				}
			}
			if state != 3*27 {
				t.Errorf("%s %s: %d state tensors listed, want %d (step, exp_avg, exp_avg_sq of 27)", what, ckpt, state, 3*27)
			}
		}
		if len(ins.Tensors) != len(sc.Tensors) {
			t.Errorf("%s: inspect lists %d tensors, scan %d", ckpt, len(ins.Tensors), len(sc.Tensors))
		}
		checkMergeEqualsScan(t, ckpt, 1, 3)
		whole := cliRun(t, "scan", "--json", "--no-progress", "--update-warn", "0.02", ckpt)
		parts := scanParts(t, t.TempDir(), ckpt, 2, "--update-warn", "0.02")
		if got := cliRun(t, append([]string{"merge", "--json"}, parts...)...); got.stdout != whole.stdout || got.code != whole.code {
			t.Errorf("%s: merge with --update-warn 0.02 differs from the scan:\nmerge: %s\nscan:  %s", ckpt, got.stdout, whole.stdout)
		}
	}
	// diff names the state tensors the same way.
	var d struct {
		Tensors []struct{ Name, Status string }
	}
	if err := json.Unmarshal([]byte(cliRun(t, "diff", "--json", filepath.Join(run, "checkpoint-3"), filepath.Join(run, "checkpoint-6")).stdout), &d); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, tn := range d.Tensors {
		found = found || (tn.Name == "state.22.exp_avg" && tn.Status == "changed")
		if strings.Contains(tn.Name, "/") {
			t.Errorf("diff: tensor %q is prefixed by its file", tn.Name)
		}
	}
	if !found {
		t.Error("diff does not compare state.22.exp_avg")
	}
}
