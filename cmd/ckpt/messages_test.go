package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/diff"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// leftoverRules are the signs of a message rendered with something other than
// the value it was written for: a format verb or a template action left in
// the text, a Go zero value, a Go identifier, or a factor ("×") that follows
// words instead of a number (bisect once printed "above the onset factor× the
// median").
var leftoverRules = []struct {
	why    string
	re     *regexp.Regexp
	except string // a match that is right (a unit)
}{
	{"fmt error", regexp.MustCompile(`%!`), ""},
	{"format verb", regexp.MustCompile(`%[-+# 0-9.*]*[vsdqfgexXtTcbopU]\b`), ""},
	{"template action", regexp.MustCompile(`\{\{|\}\}`), ""},
	{"Go zero value", regexp.MustCompile(`<nil>|\bnil\b|map\[|\[\]string|0x[0-9a-f]{6,}`), ""},
	{"Go identifier", regexp.MustCompile(`\b[a-z][a-z0-9]*[A-Z][A-Za-z0-9]*\b|\b[a-z]+\.[A-Z][A-Za-z]+\b`), "kB"},
	{"placeholder", regexp.MustCompile(`\bTODO\b|\bFIXME\b|\bXXX\b|\$\{|\$[A-Z_]{2,}\b`), ""},
	{"factor after words", regexp.MustCompile(`(^|[^0-9∞ ]) ?×`), ""},
}

// leftovers returns the leftover placeholders in one rendered output.
func leftovers(out string) []string {
	var found []string
	for _, line := range strings.Split(out, "\n") {
		for _, r := range leftoverRules {
			for _, m := range r.re.FindAllString(line, -1) {
				if m != r.except {
					found = append(found, fmt.Sprintf("%s %q in %q", r.why, m, truncateText(strings.TrimSpace(line), 200)))
					break
				}
			}
		}
	}
	return found
}

func TestLeftoversRecognisesTheBisectBug(t *testing.T) {
	bad := []string{
		"DRIFT: no interval's update jumps above the onset factor× the median of the ones before",
		"wrote %s", "x %!d(string=a)", "{{.Name}}", "got <nil>", "relUpdate is 3", "rep.OnsetFactor",
	}
	for _, s := range bad {
		if len(leftovers(s)) == 0 {
			t.Errorf("%q: no leftover found", s)
		}
	}
	good := []string{
		"DRIFT: no interval's update jumps above 5× the median of the ones before",
		"relative update 0.500, ∞× the median (0) of the intervals before", "12.5% of the values", "step 950",
		"model.layers.3.mlp.down_proj.weight", "grad_norm 3.2e+04",
	}
	for _, s := range good {
		if l := leftovers(s); len(l) > 0 {
			t.Errorf("%q: %v", s, l)
		}
	}
}

// TestEveryMessageRendersItsValues renders every message the commands print,
// with sample values from generated checkpoints and runs, in text, Markdown,
// JSON and HTML, and fails on any leftover placeholder or variable name.
func TestEveryMessageRendersItsValues(t *testing.T) {
	outputs := map[string]string{}
	add := func(label string, r cliResult) {
		out := r.stdout
		if strings.HasPrefix(out, "{") || strings.HasPrefix(out, "[") {
			out = jsonStrings(t, out)
		}
		outputs[label] = out + r.stderr
	}

	// A run that drifts and then breaks, and a healthy one.
	run, _ := writeRun(t, synth.RunOptions{Seed: 11, Checkpoints: 8, JumpStep: 350, NaNStep: 650})
	healthy, _ := writeRun(t, synth.RunOptions{Seed: 3, Checkpoints: 4, JumpStep: 250, NaNStep: -1})
	rep, err := diff.Bisect(context.Background(), mustDiscover(t, run), diff.BisectOptions{RunDir: run})
	if err != nil {
		t.Fatal(err)
	}
	if rep.DriftOnset == nil || rep.FirstUnhealthy == nil || rep.LastHealthy == nil || rep.TrainingLog == nil || len(rep.TrainingLog.Events) == 0 {
		t.Fatalf("the sample run lacks an onset, a verdict or training-log events: %+v", rep)
	}
	// Every branch of the bisect view, from one sample report: as found, no
	// onset (the "no interval jumps above N×" line), an infinite factor,
	// unhealthy from the oldest, healthy throughout.
	variants := map[string]func(r *diff.Report){
		"as found": func(r *diff.Report) {},
		"no onset": func(r *diff.Report) { r.DriftOnset = nil },
		"infinite factor": func(r *diff.Report) {
			o := *r.DriftOnset
			o.Baseline, o.Factor = 0, 0
			r.DriftOnset = &o
		},
		"oldest unhealthy": func(r *diff.Report) { r.LastHealthy = nil; r.Recommendation.RollbackTo = nil },
		"healthy":          func(r *diff.Report) { r.LastHealthy, r.FirstUnhealthy, r.Culprits = r.FirstUnhealthy, nil, nil },
		"incomplete and notes": func(r *diff.Report) {
			r.Checkpoints = append([]diff.CheckpointVerdict(nil), r.Checkpoints...)
			r.Checkpoints[0].Incomplete = "model.safetensors is truncated"
			r.Notes = append(r.Notes, "a sample note")
		},
		"many culprits": func(r *diff.Report) {
			for len(r.Culprits) < 12 {
				r.Culprits = append(r.Culprits, r.Culprits...)
			}
		},
	}
	for name, change := range variants {
		r := *rep
		change(&r)
		var b bytes.Buffer
		writeBisectText(&b, styler{}, &r, []string{run})
		outputs["bisect text, "+name] = b.String()
		b.Reset()
		if err := reportTemplate.Execute(&b, buildReportPage(&r)); err != nil {
			t.Fatal(err)
		}
		outputs["bisect report, "+name] = htmlText(b.String())
	}
	add("bisect run", cliRun(t, "bisect", "--no-progress", run))
	add("bisect healthy", cliRun(t, "bisect", "--no-progress", healthy))
	add("bisect onset factor", cliRun(t, "bisect", "--no-progress", "--onset-factor", "1000", run))
	if o := outputs["bisect onset factor"]; !strings.Contains(o, "jumps above 1000× the median") {
		t.Errorf("bisect --onset-factor 1000 does not state its factor:\n%s", o)
	}
	add("bisect json", cliRun(t, "bisect", "--no-progress", "--json", run))
	add("bisect usage", cliRun(t, "bisect", "--until", "never", run))
	add("bisect no series", cliRun(t, "bisect", t.TempDir()))

	// Checkpoints: healthy, damaged, and a file that is not one.
	good := cliTiny(t, 0, "")
	bad := cliTiny(t, 2, "")
	if err := synth.SetValues(bad, "model.layers.1.mlp.up_proj.weight", map[int]float64{3: math.NaN(), 9: math.Inf(1)}); err != nil {
		t.Fatal(err)
	}
	if err := synth.ScaleTensor(bad, "model.layers.2.mlp.down_proj.weight", 1e4); err != nil {
		t.Fatal(err)
	}
	lfs := filepath.Join(t.TempDir(), "model.safetensors")
	writeSafetensors(t, lfs, nil, nil)
	if err := synth.WriteLFSPointer(lfs); err != nil {
		t.Fatal(err)
	}
	cut := cliTiny(t, 0, "")
	if err := synth.Truncate(filepath.Join(cut, "model.safetensors"), 600); err != nil {
		t.Fatal(err)
	}
	add("diff truncated", cliRun(t, "diff", good, cut))
	add("repair truncated", cliRun(t, "repair", "--no-progress", cut, "--from", good, "-o", filepath.Join(t.TempDir(), "cut-fixed")))
	add("repair json", cliRun(t, "repair", "--no-progress", "--json", "-n", bad, "--from", good, "-o", filepath.Join(t.TempDir(), "j")))
	for _, p := range []string{good, bad, lfs, cut} {
		for _, cmd := range [][]string{{"inspect"}, {"scan"}, {"scan", "--markdown"}, {"scan", "--json"}, {"inspect", "--json"}} {
			add(fmt.Sprint(cmd, filepath.Base(p)), cliRun(t, append(append(cmd, "--no-progress"), p)...))
		}
	}
	for _, cmd := range [][]string{{"diff"}, {"diff", "--markdown"}, {"diff", "--json"}} {
		add(fmt.Sprint(cmd), cliRun(t, append(cmd, good, bad)...))
		add(fmt.Sprint(cmd, "same"), cliRun(t, append(cmd, good, good)...))
	}
	out := filepath.Join(t.TempDir(), "out")
	add("repair dry run", cliRun(t, "repair", "--no-progress", "-n", bad, "--from", good, "-o", out))
	add("repair layers", cliRun(t, "repair", "--no-progress", "--strategy", "layers", bad, "--from", good, "-o", out))
	add("repair exists", cliRun(t, "repair", "--no-progress", bad, "--from", good, "-o", out))
	add("repair elements", cliRun(t, "repair", "--no-progress", "--elements", "--force", bad, "--from", good, "-o", out))
	add("repair from itself", cliRun(t, "repair", "--no-progress", bad, "--from", bad, "-o", out+"2"))
	add("repair from damaged", cliRun(t, "repair", "--no-progress", good, "--from", bad, "-o", out+"3"))
	add("repair auto", cliRun(t, "repair", "--no-progress", filepath.Join(run, "checkpoint-700"), "--from", "auto", "-o", out+"4"))
	add("repair auto outside a run", cliRun(t, "repair", "--no-progress", bad, "--from", "auto", "-o", out+"5"))
	for _, args := range [][]string{{}, {"--help"}, {"nosuch"}, {"scan"}, {"scan", "--help"}, {"diff", good}, {"repair", bad}, {"inspect", "/nonexistent"}} {
		add(fmt.Sprint("usage", args), cliRun(t, args...))
	}

	for label, out := range outputs {
		if strings.TrimSpace(out) == "" {
			t.Errorf("%s: printed nothing", label)
		}
		for _, l := range leftovers(out) {
			t.Errorf("%s: %s", label, l)
		}
	}
}

func mustDiscover(t *testing.T, run string) []*diff.Entry {
	t.Helper()
	es, err := diff.Discover(run)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// jsonStrings is every string value of a JSON document (one per line): the
// messages a JSON reader shows.
func jsonStrings(t *testing.T, doc string) string {
	t.Helper()
	var b strings.Builder
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			b.WriteString(v + "\n")
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	dec := json.NewDecoder(strings.NewReader(doc))
	for {
		var v any
		if err := dec.Decode(&v); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("JSON does not parse: %v", err)
		}
		walk(v)
	}
	return b.String()
}

var htmlTag = regexp.MustCompile(`(?s)<style.*?</style>|<script.*?</script>|<[^>]*>`)

// htmlText is the text of a report page a reader sees (tags and styles
// dropped; SVG titles and labels kept).
func htmlText(page string) string {
	return htmlTag.ReplaceAllString(page, "\n")
}
