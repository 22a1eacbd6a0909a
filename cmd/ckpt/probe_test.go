package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// probeOverflowModel writes the model whose layer 2 MLP overflows float16.
func probeOverflowModel(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	d, w := synth.OverflowingDecoder()
	if err := synth.WriteDecoder(dir, d, formats.BF16, w); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestProbeJSONContract: the JSON fields the issue specifies, f16 overflow
// named at layer 2 mlp with exit 1, and exit 0 in bf16 and f32.
func TestProbeJSONContract(t *testing.T) {
	dir := probeOverflowModel(t)
	r := cliRun(t, "probe", "--json", "--dtype", "f16", "--tokens", "1,2,3,250", "--positions", "2", dir)
	r.wantCode(t, 1)
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	for _, k := range []string{"path", "arch", "dtype", "tokens", "layers", "first_nonfinite", "logits", "findings", "summary"} {
		if _, ok := got[k]; !ok {
			t.Errorf("missing key %q", k)
		}
	}
	var rep struct {
		Arch   string `json:"arch"`
		DType  string `json:"dtype"`
		Tokens []int  `json:"tokens"`
		Layers []struct {
			Layer       int      `json:"layer"`
			AttnAbsmax  *float64 `json:"attn_absmax"`
			MLPAbsmax   *float64 `json:"mlp_absmax"`
			ResidAbsmax *float64 `json:"resid_absmax"`
			ResidRMS    *float64 `json:"resid_rms"`
			Nonfinite   *int     `json:"nonfinite"`
		} `json:"layers"`
		First *struct {
			Layer            int      `json:"layer"`
			Where            string   `json:"where"`
			LastFiniteAbsmax *float64 `json:"last_finite_absmax"`
		} `json:"first_nonfinite"`
		Logits struct {
			Absmax    *float64 `json:"absmax"`
			Finite    bool     `json:"finite"`
			Positions []struct {
				Position int  `json:"position"`
				Valid    bool `json:"valid"`
				Top      []struct {
					Token *int     `json:"token"`
					Prob  *float64 `json:"prob"`
				} `json:"top"`
			} `json:"positions"`
		} `json:"logits"`
		Findings []struct {
			Severity, Check string
		} `json:"findings"`
		Summary struct {
			Healthy *bool `json:"healthy"`
		} `json:"summary"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Arch != "llama" || rep.DType != "f16" || len(rep.Tokens) != 4 {
		t.Errorf("header %+v", rep)
	}
	if len(rep.Layers) != 5 || rep.Layers[0].Layer != -1 || rep.Layers[4].Layer != 3 || rep.Layers[0].AttnAbsmax != nil || rep.Layers[1].Nonfinite == nil {
		t.Errorf("layers %s", r.stdout)
	}
	if rep.First == nil || rep.First.Layer != 2 || rep.First.Where != "mlp" || rep.First.LastFiniteAbsmax == nil {
		t.Errorf("first_nonfinite %+v", rep.First)
	}
	if rep.Logits.Finite || len(rep.Logits.Positions) != 2 || rep.Logits.Positions[0].Position != 2 || rep.Logits.Positions[1].Valid ||
		len(rep.Logits.Positions[1].Top) != 0 { // every logit is NaN: nothing to rank
		t.Errorf("logits %+v", rep.Logits)
	}
	if rep.Summary.Healthy == nil || *rep.Summary.Healthy || len(rep.Findings) == 0 || rep.Findings[0].Check != "probe" || rep.Findings[0].Severity != "error" {
		t.Errorf("findings %+v summary %+v", rep.Findings, rep.Summary)
	}
	for _, dt := range []string{"bf16", "f32"} {
		r := cliRun(t, "probe", "--json", "--dtype", dt, dir)
		r.wantCode(t, 0)
		if !strings.Contains(r.stdout, `"first_nonfinite":null`) || !strings.Contains(r.stdout, `"healthy":true`) || !strings.Contains(r.stdout, `"top":[{"token":`) {
			t.Errorf("%s: %s", dt, r.stdout)
		}
	}
}

// TestProbeText: the text report names the place and the verdict; every
// string from the checkpoint is escaped.
func TestProbeText(t *testing.T) {
	dir := probeOverflowModel(t)
	odd := filepath.Join(filepath.Dir(dir), "m\x1b[2Jx")
	if err := os.Rename(dir, odd); err != nil {
		t.Fatal(err)
	}
	r := cliRun(t, "probe", "--dtype", "float16", odd)
	r.wantCode(t, 1)
	for _, want := range []string{"first non-finite: layer 2 mlp", "INVALID", "UNHEALTHY", "probe", `m\x1b[2Jx`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("missing %q in\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "\x1b") {
		t.Errorf("raw escape in output:\n%q", r.stdout)
	}
	r = cliRun(t, "probe", "--color", "never", odd)
	r.wantCode(t, 0)
	if !strings.Contains(r.stdout, "healthy: every probed next-token distribution is valid") || !strings.Contains(r.stdout, "bf16") {
		t.Errorf("default dtype run:\n%s", r.stdout)
	}
}

// TestProbeCannotRun: unsupported architectures, usage mistakes and missing
// files exit 2 with a message saying what is wrong.
func TestProbeCannotRun(t *testing.T) {
	dir := probeOverflowModel(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--tokens", "1,x"}, `"x" is not a token id`},
		{[]string{"--tokens", "1,300"}, "token id 300 is outside the vocabulary"},
		{[]string{"--dtype", "f8"}, "cannot be probed"},
		{[]string{"--prompt", "hello"}, "--prompt is not supported yet"},
		{[]string{"--positions", "-1"}, "--positions"},
	} {
		r := cliRun(t, append(append([]string{"probe"}, c.args...), dir)...)
		r.wantCode(t, 2)
		if !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: stderr %q, want %q", c.args, r.stderr, c.want)
		}
	}
	cfg := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfg, []byte(`{"model_type": "gpt_neox"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := cliRun(t, "probe", dir)
	r.wantCode(t, 2)
	if !strings.Contains(r.stderr, "architecture gpt_neox is not supported by probe (supported: llama, mistral, qwen2, qwen3, gemma)") {
		t.Errorf("stderr %q", r.stderr)
	}
	cliRun(t, "probe", filepath.Join(dir, "missing")).wantCode(t, 2)
	cliRun(t, "probe").wantCode(t, 2)
}
