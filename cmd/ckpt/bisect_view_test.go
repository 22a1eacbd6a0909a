package main

import (
	"bytes"
	"context"
	"html"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/diff"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// TestBisectTextAndReportShowOneView: the text output and the HTML report are
// laid out from the same view, so each shows every row's notes, the verdict's
// checkpoints, the onset (or the rule that found none) and the culprits alike.
func TestBisectTextAndReportShowOneView(t *testing.T) {
	run, truth := writeRun(t, synth.RunOptions{Seed: 11, Checkpoints: 8, JumpStep: 350, NaNStep: 650})
	rep, err := diff.Bisect(context.Background(), mustDiscover(t, run), diff.BisectOptions{RunDir: run})
	if err != nil {
		t.Fatal(err)
	}
	noOnset := *rep
	noOnset.DriftOnset = nil
	for _, r := range []*diff.Report{rep, &noOnset} {
		v := newBisectView(r)
		var text, page bytes.Buffer
		writeBisectText(&text, styler{}, r, []string{run})
		if err := reportTemplate.Execute(&page, buildReportPage(r)); err != nil {
			t.Fatal(err)
		}
		htmlText := html.UnescapeString(page.String())
		want := []string{v.FirstBad.Name, v.LastGood.Name, v.Reason}
		for _, row := range v.Rows {
			want = append(want, row.Name)
			if len(row.Notes) > 0 {
				want = append(want, strings.Join(row.Notes, "; "))
			}
		}
		if v.Onset != nil {
			want = append(want, v.Onset.Factor+"× the median ("+v.Onset.Baseline+")")
		} else {
			want = append(want, v.NoOnset)
		}
		for i, c := range v.Culprits {
			if i == 10 { // the text lists ten, the report more
				break
			}
			want = append(want, c.Tensor)
		}
		for _, s := range want {
			if !strings.Contains(text.String(), s) {
				t.Errorf("the text lacks %q", s)
			}
			if !strings.Contains(htmlText, s) {
				t.Errorf("the report lacks %q", s)
			}
		}
		if v.FirstBad.Step != truth.FirstUnhealthy {
			t.Errorf("first unhealthy step %d, want %d", v.FirstBad.Step, truth.FirstUnhealthy)
		}
	}
}
