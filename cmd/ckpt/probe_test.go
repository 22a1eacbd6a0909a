package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/hostile"
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
	for _, want := range []string{"first non-finite: layer 2 mlp", "in float32 it reaches", "INVALID", "UNHEALTHY", "probe", `m\x1b[2Jx`} {
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
		{[]string{"--prompt", "hello"}, "--prompt needs a tokenizer.json beside the weights"},
		{[]string{"--prompt", "hello", "--tokens", "1"}, "cannot be used together"},
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

// TestBisectUntilProbe: in a run whose weights stay finite until
// checkpoint-500 but whose f16 forward pass overflows from checkpoint-300,
// bisect --until probe names both and says they differ.
func TestBisectUntilProbe(t *testing.T) {
	run := t.TempDir()
	d, bad := synth.OverflowingDecoder()
	good := d.Weights(7)
	for _, c := range []struct {
		step int
		w    *synth.DecoderWeights
		nan  bool
	}{{100, good, false}, {200, good, false}, {300, bad, false}, {400, bad, false}, {500, bad, true}} {
		w := c.w
		if c.nan {
			w.Values["model.layers.0.mlp.up_proj.weight"][3] = math.NaN()
		}
		if err := synth.WriteDecoder(filepath.Join(run, fmt.Sprintf("checkpoint-%d", c.step)), d, formats.BF16, w); err != nil {
			t.Fatal(err)
		}
	}
	r := cliRun(t, "bisect", "--until", "probe", "--dtype", "f16", "--json", run)
	r.wantCode(t, 1)
	var rep struct {
		FirstUnhealthy *struct{ Step int } `json:"first_unhealthy"`
		Recommendation struct {
			RollbackTo *struct{ Step int } `json:"rollback_to"`
			Reason     string              `json:"reason"`
		} `json:"recommendation"`
		Probe struct {
			FirstFailing          *struct{ Step int } `json:"first_failing"`
			LastPassing           *struct{ Step int } `json:"last_passing"`
			FirstNonfiniteWeights *struct{ Step int } `json:"first_nonfinite_weights"`
			Probed                []struct {
				Healthy        bool `json:"healthy"`
				FirstNonfinite *struct {
					Layer int
					Where string
				} `json:"first_nonfinite"`
			} `json:"probed"`
			Message string `json:"message"`
		} `json:"probe"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	p := rep.Probe
	if rep.FirstUnhealthy == nil || rep.FirstUnhealthy.Step != 500 || p.FirstNonfiniteWeights == nil || p.FirstNonfiniteWeights.Step != 500 {
		t.Errorf("weights verdict: %s", r.stdout)
	}
	if p.FirstFailing == nil || p.FirstFailing.Step != 300 || p.LastPassing == nil || p.LastPassing.Step != 200 {
		t.Errorf("probe verdict: %s", r.stdout)
	}
	want := "weights finite until checkpoint-400, but f16 sampling fails from checkpoint-300 (first non-finite at layer 2 mlp); roll back to checkpoint-200"
	if !strings.Contains(p.Message, want) {
		t.Errorf("message %q, want %q", p.Message, want)
	}
	// The recommendation follows the probe: checkpoint-300 and -400 have
	// finite weights but cannot sample in f16.
	if rc := rep.Recommendation; rc.RollbackTo == nil || rc.RollbackTo.Step != 200 || !strings.Contains(rc.Reason, "the probe fails from checkpoint-300") {
		t.Errorf("recommendation %+v", rc)
	}
	if len(p.Probed) > 4 {
		t.Errorf("%d probes for 5 checkpoints", len(p.Probed))
	}
	r = cliRun(t, "bisect", "--until", "probe", "--dtype", "f16", run)
	r.wantCode(t, 1)
	if !strings.Contains(r.stdout, "PROBE") || !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, "RECOMMENDATION: roll back to checkpoint-200") {
		t.Errorf("text:\n%s", r.stdout)
	}
	// In bf16 the probe passes until the NaN weights.
	r = cliRun(t, "bisect", "--until", "probe", "--dtype", "bf16", "--json", run)
	r.wantCode(t, 1)
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Probe.FirstFailing == nil || rep.Probe.FirstFailing.Step != 500 ||
		!strings.Contains(rep.Probe.Message, "non-finite weights and failing sampling start together") {
		t.Errorf("bf16: %v %s", err, r.stdout)
	}
	cliRun(t, "bisect", "--dtype", "f16", run).wantCode(t, 2)
}

// TestProbePrompt: --prompt is tokenized with the checkpoint's tokenizer.json
// and the top tokens are decoded, escaped in text and JSON.
func TestProbePrompt(t *testing.T) {
	dir := probeOverflowModel(t)
	merges := [][2]string{{"H", "e"}, {"l", "l"}, {"He", "ll"}, {"Hell", "o"}}
	tok := synth.ByteLevelTokenizerJSON(synth.Qwen2Pattern, true, merges)
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tok, 0o644); err != nil {
		t.Fatal(err)
	}
	r := cliRun(t, "probe", "--json", "--dtype", "f32", "--prompt", "Hello\x1b!", dir)
	r.wantCode(t, 0)
	var rep struct {
		Tokens []int `json:"tokens"`
		Logits struct {
			Positions []struct {
				Top []struct {
					Token int     `json:"token"`
					Text  *string `json:"text"`
				} `json:"top"`
			} `json:"positions"`
		} `json:"logits"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	// "Hello" is merged to id 259 (the 256 bytes, then He, ll, Hell, Hello);
	// ESC is byte 0x1b and "!" byte 0x21 (separate pieces).
	if fmt.Sprint(rep.Tokens) != "[259 27 33]" {
		t.Errorf("tokens %v", rep.Tokens)
	}
	if top := rep.Logits.Positions[0].Top[0]; top.Text == nil {
		t.Errorf("top token not decoded: %s", r.stdout)
	}
	r = cliRun(t, "probe", "--dtype", "f32", "--tokens", "27,27", dir)
	r.wantCode(t, 0)
	if strings.Contains(r.stdout, "\x1b") {
		t.Errorf("raw escape in output:\n%q", r.stdout)
	}
}

// TestProbeHostileCorpus: probe, given each malformed checkpoint of the
// hostile corpus with a valid config.json beside it, ends quickly with exit 2
// and a diagnostic naming the path, never a panic.
func TestProbeHostileCorpus(t *testing.T) {
	root := t.TempDir()
	cases, err := hostile.Generate(root)
	if err != nil {
		t.Fatal(err)
	}
	cfg := synth.Decoder{Family: "llama", Vocab: 300, Hidden: 64, Intermediate: 172, Layers: 2, Heads: 4, KVHeads: 2}.ConfigJSON(formats.F32)
	for _, c := range cases {
		dir := c.Path
		if st, err := os.Stat(c.Path); err != nil || !st.IsDir() {
			dir = filepath.Dir(c.Path)
		}
		os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644) // a read-only or odd case directory just has none
		r := cliRunBounded(t, 20*time.Second, c.Name, "probe", c.Path)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "ckpt: error: "+c.Path) {
			t.Errorf("%s: exit %d, stderr %q", c.Name, r.code, r.stderr)
		}
	}
}

// TestProbeBrokenModel: a model probe cannot run says what is wrong.
func TestProbeBrokenModel(t *testing.T) {
	for _, c := range []struct {
		name    string
		corrupt func(dir string) error
		want    string
	}{
		{"truncated", func(dir string) error {
			p := filepath.Join(dir, "model.safetensors")
			st, err := os.Stat(p)
			if err != nil {
				return err
			}
			return os.Truncate(p, st.Size()-100)
		}, "model.safetensors"},
		{"shape", func(dir string) error {
			p := filepath.Join(dir, "config.json")
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(p, []byte(strings.Replace(string(b), `"intermediate_size": 172`, `"intermediate_size": 170`, 1)), 0o644)
		}, "but config.json implies [170 64]"},
		{"no-config", func(dir string) error { return os.Remove(filepath.Join(dir, "config.json")) }, "no config.json beside the weights"},
	} {
		dir := probeOverflowModel(t)
		if err := c.corrupt(dir); err != nil {
			t.Fatal(err)
		}
		r := cliRunBounded(t, 20*time.Second, c.name, "probe", dir)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q, want %q", c.name, r.code, r.stderr, c.want)
		}
		if testing.Verbose() {
			t.Logf("%s: %s", c.name, r.stderr)
		}
	}
}
