package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
	"github.com/ckpt-tool/ckpt/probe"
)

// ckpt probe: a forward pass on a few tokens in the served dtype; where the
// activations stop being finite, and whether sampling would fail.

func init() {
	register(command{
		name:    "probe",
		summary: "forward pass on a few tokens in the served dtype: where inf/NaN starts, whether sampling fails",
		run:     runProbeCmd,
	})
}

// probeOptions are the flags of ckpt probe.
type probeOptions struct {
	JSON       bool
	DType      string
	Tokens     string
	Prompt     string
	Positions  int
	Workers    int
	Source     string
	Color      string
	NoProgress bool
}

func runProbeCmd(args []string, stdout, stderr io.Writer) error {
	var o probeOptions
	fs := newFlagSet("probe", "probe [flags] PATH", stderr)
	fs.StringVar(&o.DType, "dtype", "", "the dtype the model is served in: f32, bf16 or f16 (default: config.json's torch_dtype)")
	fs.StringVar(&o.Tokens, "tokens", "", "comma-separated token ids to run (default: eight ids spread across the vocabulary, (2i+1)·vocab/16)")
	fs.StringVar(&o.Prompt, "prompt", "", "text to run, tokenized with the checkpoint's tokenizer.json (byte-level BPE as Qwen2 and Llama 3 use; no special tokens are added)")
	fs.IntVar(&o.Positions, "positions", 0, "check the next-token distributions of the last N positions (0: all)")
	fs.BoolVar(&o.JSON, "json", false, "print one JSON object (the contract in docs/probe.md)")
	fs.IntVarP(&o.Workers, "workers", "j", 0, "goroutines for the matrix products (0: one per CPU)")
	fs.StringVar(&o.Source, "source", "pread", "how bytes are read: pread or mmap")
	fs.StringVar(&o.Color, "color", "auto", "colour the text output: "+colorModes+" (NO_COLOR turns it off)")
	fs.BoolVar(&o.NoProgress, "no-progress", false, "never draw the progress bar (it is drawn only when stderr is a terminal)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("run 'ckpt probe --help'", "probe needs exactly one PATH (a checkpoint directory, or a .safetensors file with config.json beside it)")
	}
	opts, err := o.probeOptions()
	if err != nil {
		return err
	}
	color, err := useColor(o.Color, stdout)
	if err != nil {
		return err
	}
	return forEachPath(fs.Args(), stderr, func(path string) (bool, error) {
		start := time.Now()
		tk, err := checkpointTokenizer(path, o.Prompt != "")
		if err != nil {
			return false, err
		}
		if o.Prompt != "" {
			if opts.Tokens, err = tk.Encode(o.Prompt); err != nil {
				return false, fmt.Errorf("--prompt: %w", err)
			}
			if len(opts.Tokens) == 0 {
				return false, usagef("give a non-empty --prompt", "--prompt gives no tokens")
			}
		}
		var bar *byteProgress
		var seen int64
		opts := opts
		opts.Progress = func(done, total int64) {
			if bar == nil {
				bar = newByteProgress(stderr, total, "probe "+path, !o.NoProgress)
			}
			bar.Add(done - seen)
			seen = done
		}
		r, err := probe.Run(path, opts)
		bar.Done()
		if errors.Is(err, probe.ErrNoServingDType) {
			return false, withHint(err, "pass --dtype f32, bf16 or f16")
		}
		if err != nil {
			return false, err
		}
		if o.JSON {
			err = writeJSON(stdout, probeReport(r, tk))
		} else {
			writeProbeText(stdout, styler{on: color}, r, tk, time.Since(start))
		}
		return !r.Healthy, err
	})
}

// probeOptions validates the flags.
func (o probeOptions) probeOptions() (probe.Options, error) {
	var opts probe.Options
	if o.Prompt != "" && o.Tokens != "" {
		return opts, usagef("pick one", "--prompt and --tokens cannot be used together")
	}
	if o.DType != "" {
		d, err := probe.ParseDType(strings.ToLower(o.DType))
		if err != nil {
			return opts, usagef("use --dtype f32, bf16 or f16", "%v", err)
		}
		opts.DType = d
	}
	if o.Tokens != "" {
		for _, s := range strings.Split(o.Tokens, ",") {
			id, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || id < 0 {
				return opts, usagef("give token ids as non-negative integers separated by commas", "--tokens: %q is not a token id", s)
			}
			opts.Tokens = append(opts.Tokens, id)
		}
	}
	if o.Positions < 0 {
		return opts, usagef("use --positions 0 for all", "--positions must be 0 or more, not %d", o.Positions)
	}
	if o.Workers < 0 {
		return opts, usagef("use -j 0 for one worker per CPU", "-j/--workers must be 0 or more, not %d", o.Workers)
	}
	src, err := formats.ParseSourceMode(o.Source)
	if err != nil {
		return opts, usagef("use --source pread or --source mmap", "%v", err)
	}
	opts.Positions, opts.Workers, opts.Source = o.Positions, o.Workers, src
	return opts, nil
}

// checkpointTokenizer reads the tokenizer.json beside the checkpoint at
// path. Without --prompt it only names top tokens, so a missing or
// unsupported one is no tokenizer; with --prompt it is an error.
func checkpointTokenizer(path string, need bool) (*probe.Tokenizer, error) {
	dir := path
	if st, err := formats.FSFor(path).Stat(path); err == nil && !st.IsDir() {
		dir = formats.DirOf(path)
	}
	tk, err := probe.ReadTokenizer(formats.JoinPath(dir, "tokenizer.json"))
	switch {
	case err == nil:
		return tk, nil
	case !need:
		return nil, nil
	case errors.Is(err, probe.ErrTokenizerUnsupported):
		return nil, withHint(err, "pass token ids with --tokens")
	case errors.Is(err, fs.ErrNotExist):
		return nil, usagef("pass token ids with --tokens", "--prompt needs a tokenizer.json beside the weights, and %s has none", dir)
	}
	return nil, err
}

// tokenText is a token's text for display, or "" without a tokenizer.
func tokenText(tk *probe.Tokenizer, id int) string {
	if tk == nil {
		return ""
	}
	s, _ := tk.Decode(id)
	return s
}

// probeReportJSON is `ckpt probe --json`.
type probeReportJSON struct {
	Path           string            `json:"path"`
	Arch           string            `json:"arch"`
	DType          string            `json:"dtype"`
	Tokens         []int             `json:"tokens"`
	Layers         []probeLayerJSON  `json:"layers"`
	FirstNonfinite *probePlaceJSON   `json:"first_nonfinite"`
	Logits         probeLogitsJSON   `json:"logits"`
	Findings       []inspect.Finding `json:"findings"`
	Summary        probeSummaryJSON  `json:"summary"`
}

type probeLayerJSON struct {
	Layer       int      `json:"layer"`
	AttnAbsmax  *float64 `json:"attn_absmax"`
	MLPAbsmax   *float64 `json:"mlp_absmax"`
	ResidAbsmax *float64 `json:"resid_absmax"`
	ResidRMS    *float64 `json:"resid_rms"`
	Nonfinite   int      `json:"nonfinite"`
}

type probePlaceJSON struct {
	Layer            int      `json:"layer"`
	Where            string   `json:"where"`
	LastFiniteAbsmax *float64 `json:"last_finite_absmax"`
	// Additions: the failing output's largest finite value, its non-finite
	// count, and its largest magnitude in float32 before rounding to the dtype.
	FiniteAbsmax    *float64 `json:"finite_absmax"`
	Nonfinite       int      `json:"nonfinite"`
	UnroundedAbsmax *float64 `json:"unrounded_absmax"`
}

type probeLogitsJSON struct {
	Absmax    *float64            `json:"absmax"`
	Finite    bool                `json:"finite"`
	Positions []probePositionJSON `json:"positions"`
}

type probePositionJSON struct {
	Position int            `json:"position"`
	Valid    bool           `json:"valid"`
	Why      string         `json:"why,omitempty"`
	Top      []probeTopJSON `json:"top"`
}

type probeTopJSON struct {
	Token int      `json:"token"`
	Text  *string  `json:"text,omitempty"` // decoded, when the checkpoint has a tokenizer.json
	Prob  *float64 `json:"prob"`
	Logit *float64 `json:"logit"`
}

type probeSummaryJSON struct {
	Healthy  bool `json:"healthy"`
	Errors   int  `json:"errors"`
	Warnings int  `json:"warnings"`
}

func statOrNull(v float64) *float64 { return finiteOrNull(true, v) }

// probePlace converts a first non-finite place (nil stays nil).
func probePlace(f *probe.Place) *probePlaceJSON {
	if f == nil {
		return nil
	}
	return &probePlaceJSON{Layer: f.Layer, Where: f.Where, LastFiniteAbsmax: statOrNull(f.LastFiniteAbsmax),
		FiniteAbsmax: statOrNull(f.FiniteAbsmax), Nonfinite: f.NonFinite, UnroundedAbsmax: statOrNull(f.UnroundedAbsmax)}
}

func probeLayer(l probe.LayerStats) probeLayerJSON {
	return probeLayerJSON{Layer: l.Layer, AttnAbsmax: statOrNull(l.AttnAbsmax), MLPAbsmax: statOrNull(l.MLPAbsmax),
		ResidAbsmax: statOrNull(l.ResidAbsmax), ResidRMS: statOrNull(l.ResidRMS), Nonfinite: l.NonFinite}
}

// probeReport converts a probe's report to its JSON form; layer -1 is the
// embedding.
func probeReport(r *probe.Report, tk *probe.Tokenizer) probeReportJSON {
	out := probeReportJSON{Path: r.Path, Arch: r.Arch, DType: strings.ToLower(string(r.DType)), Tokens: r.Tokens,
		Layers: []probeLayerJSON{probeLayer(r.Embedding)}, Findings: jsonFindings(r.Findings)}
	for _, l := range r.Layers {
		out.Layers = append(out.Layers, probeLayer(l))
	}
	out.FirstNonfinite = probePlace(r.FirstNonFinite)
	out.Logits = probeLogitsJSON{Absmax: statOrNull(r.LogitsAbsmax), Finite: r.LogitsFinite, Positions: []probePositionJSON{}}
	for _, p := range r.Positions {
		pj := probePositionJSON{Position: p.Position, Valid: p.Valid, Why: p.Why, Top: []probeTopJSON{}}
		for _, t := range p.Top {
			tj := probeTopJSON{Token: t.Token, Prob: statOrNull(t.Prob), Logit: statOrNull(t.Logit)}
			if tk != nil {
				s := tokenText(tk, t.Token)
				tj.Text = &s
			}
			pj.Top = append(pj.Top, tj)
		}
		out.Logits.Positions = append(out.Logits.Positions, pj)
	}
	errs, warns := countSeverities(r.Findings)
	out.Summary = probeSummaryJSON{Healthy: r.Healthy, Errors: errs, Warnings: warns}
	return out
}

// writeProbeText prints a probe for a person: the per-layer table, the first
// non-finite place, the distributions and the findings. Every string from the
// checkpoint goes through safeText.
func writeProbeText(w io.Writer, st styler, r *probe.Report, tk *probe.Tokenizer, elapsed time.Duration) {
	ids := make([]string, len(r.Tokens))
	for i, id := range r.Tokens {
		ids[i] = strconv.Itoa(id)
	}
	fmt.Fprintf(w, "%s %s\n", st.Bold(safeText(r.Path)), st.Dim(fmt.Sprintf("(%s, served in %s, %s: %s; %s)",
		safeText(r.Arch), strings.ToLower(string(r.DType)), plural(len(r.Tokens), "token"), strings.Join(ids, ","), durationText(elapsed))))
	g := func(v float64) string {
		if math.IsNaN(v) {
			return "-"
		}
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	t := textTable{header: []string{"layer", "attn absmax", "mlp absmax", "resid absmax", "resid rms", "non-finite"},
		right: map[int]bool{0: true, 1: true, 2: true, 3: true, 4: true, 5: true}}
	for _, l := range append([]probe.LayerStats{r.Embedding}, r.Layers...) {
		name := strconv.Itoa(l.Layer)
		if l.Layer < 0 {
			name = "embed"
		}
		nf := cell{text: strconv.Itoa(l.NonFinite)}
		if l.NonFinite > 0 {
			nf.style = st.Red
		}
		t.addCells(cell{text: name}, cell{text: g(l.AttnAbsmax)}, cell{text: g(l.MLPAbsmax)}, cell{text: g(l.ResidAbsmax)}, cell{text: g(l.ResidRMS)}, nf)
	}
	fmt.Fprintln(w)
	t.write(w, st.Bold)
	fmt.Fprintln(w)
	if f := r.FirstNonFinite; f != nil {
		over := ""
		if f.UnroundedAbsmax > r.DType.MaxFinite() {
			over = fmt.Sprintf("; in float32 it reaches %s, beyond %s's %s", g(f.UnroundedAbsmax), strings.ToLower(string(r.DType)), g(r.DType.MaxFinite()))
		}
		fmt.Fprintf(w, "first non-finite: %s (%s non-finite; largest value before it %s%s)\n",
			st.Red(probe.PlaceText(f.Layer, len(r.Layers), f.Where)), groupDigits(uint64(f.NonFinite)), g(f.LastFiniteAbsmax), over)
	} else {
		fmt.Fprintln(w, "first non-finite: none (every activation is finite)")
	}
	fmt.Fprintf(w, "logits: absmax %s, %s\n", g(r.LogitsAbsmax), map[bool]string{true: "all finite", false: st.Red("not all finite")}[r.LogitsFinite])
	pt := textTable{header: []string{"position", "distribution", "top tokens (probability)"}, right: map[int]bool{0: true}}
	for _, p := range r.Positions {
		var top []string
		for _, t := range p.Top {
			if tk != nil {
				top = append(top, fmt.Sprintf("%d %s (%s)", t.Token, strconv.Quote(tokenText(tk, t.Token)), g(t.Prob)))
			} else {
				top = append(top, fmt.Sprintf("%d (%s)", t.Token, g(t.Prob)))
			}
		}
		v := cell{text: "valid", style: st.Green}
		if !p.Valid {
			v = cell{text: "INVALID", style: st.Red}
		}
		pt.addCells(cell{text: strconv.Itoa(p.Position)}, v, cell{text: safeText(strings.Join(top, ", "))})
	}
	fmt.Fprintln(w)
	pt.write(w, st.Bold)
	if len(r.Findings) > 0 {
		fmt.Fprintln(w)
		writeFindings(w, st, r.Findings, func(string) string { return "" })
	}
	fmt.Fprintln(w)
	if r.Healthy {
		fmt.Fprintln(w, st.BoldGreen("healthy: every probed next-token distribution is valid"))
	} else {
		fmt.Fprintln(w, st.BoldRed("UNHEALTHY: "+findingCounts(r.Findings)))
	}
}
