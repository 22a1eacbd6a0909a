package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sort"
	"time"

	"github.com/ckpt-tool/ckpt/diff"
	"github.com/ckpt-tool/ckpt/formats"
)

// ckpt bisect --pairs-part K/N: one share of the drift timeline, and its merge.

// bisectPartJSON is the partial result of `ckpt bisect --pairs-part K/N --json`.
type bisectPartJSON struct {
	Kind        string           `json:"kind"`    // partKindBisect
	Version     int              `json:"version"` // partFormat
	Part        int              `json:"part"`
	Parts       int              `json:"parts"`
	Args        []string         `json:"args"`   // the run directory or checkpoints, as given
	Series      []diff.Ref       `json:"series"` // the complete checkpoints, in order
	Read        []bisectPartCkpt `json:"read"`   // the checkpoints this part compared, and their files
	Until       string           `json:"until"`
	Probe       bool             `json:"probe"`
	ProbeDType  string           `json:"probe_dtype"`
	ProbeTokens string           `json:"probe_tokens"`
	Top         int              `json:"top"`
	OnsetFactor exactFloat       `json:"onset_factor"`
	UpdateWarn  exactFloat       `json:"update_warn"`
	Intervals   []diff.Interval  `json:"intervals"` // this part's pairs, in order
	ElapsedMS   int64            `json:"elapsed_ms"`
}

// bisectPartCkpt is a checkpoint a part read, with the identity of its files.
type bisectPartCkpt struct {
	Path  string     `json:"path"`
	Files []partFile `json:"files"`
}

// runBisectPart computes part k of n of the drift timeline and writes it.
func runBisectPart(o bisectOptions, k, n int, args []string, stdout, stderr io.Writer) error {
	switch {
	case !o.JSON:
		return usagef("add --json and send stdout to a file; ckpt merge reads the parts", "--pairs-part writes a partial result, which needs --json")
	case o.Fast || o.NoDrift:
		return usagef("drop --fast and --no-drift", "--pairs-part computes the drift timeline of every pair; --fast and --no-drift do not apply")
	case o.Report != "" || o.JUnit != "":
		return usagef("run the part without them", "--pairs-part writes a partial result; --report and --junit do not apply")
	}
	es, _, err := bisectSeries(args)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	ivs, err := diff.PairIntervals(ctx, es, k, n, o.Top, diff.Options{Workers: o.Workers})
	if err != nil {
		return err
	}
	out := bisectPartJSON{Kind: partKindBisect, Version: partFormat, Part: k, Parts: n, Args: args, Series: []diff.Ref{}, Read: []bisectPartCkpt{},
		Until: o.Until, Probe: o.Probe, ProbeDType: o.ProbeDType, ProbeTokens: o.ProbeTokens, Top: o.Top, OnsetFactor: exactFloat(o.OnsetFactor),
		UpdateWarn: exactFloat(o.UpdateWarn), Intervals: ivs}
	complete := diff.CompleteEntries(es)
	for _, e := range complete {
		out.Series = append(out.Series, diff.Ref{Path: e.Path, Step: e.Step})
	}
	if len(complete) >= 2 {
		lo, hi := diff.PairRange(len(complete)-1, k, n)
		if lo < hi {
			for _, e := range complete[lo : hi+1] {
				ids, err := checkpointIdentity(e.Path)
				if err != nil {
					return err
				}
				out.Read = append(out.Read, bisectPartCkpt{Path: e.Path, Files: ids})
			}
		}
	}
	out.ElapsedMS = time.Since(start).Milliseconds()
	return writeJSON(stdout, out)
}

// checkpointIdentity opens the checkpoint at path (headers only) and
// describes its files.
func checkpointIdentity(path string) ([]partFile, error) {
	c, err := formats.Open(path)
	if err != nil {
		return nil, err
	}
	return fileIdentities(c)
}

// mergeBisect checks the parts of one split drift timeline and runs the
// bisect with their intervals: the verdict's scans (at most ⌈log2 n⌉ + 2) run
// here, the comparisons of every pair ran in the parts.
func mergeBisect(o scanOptions, names []string, raws [][]byte, stdout, stderr io.Writer) error {
	if o.Markdown || o.All || o.Strict {
		return usagef("use --json or the text report", "--markdown, --all and --strict apply to scan parts, not to bisect parts")
	}
	parts, ks, err := decodeParts(names, raws, "bisect", func(p *bisectPartJSON) int { return p.Part })
	if err != nil {
		return err
	}
	first := parts[0]
	for i, p := range parts[1:] {
		name := names[i+1]
		switch {
		case !slices.Equal(p.Args, first.Args):
			return fmt.Errorf("%s bisected %v but %s bisected %v: merge the parts of one run", names[0], first.Args, name, p.Args)
		case p.Parts != first.Parts:
			return fmt.Errorf("%s is a part of %d but %s a part of %d: every part must be cut with the same N", names[0], first.Parts, name, p.Parts)
		case !slices.Equal(p.Series, first.Series):
			return fmt.Errorf("%s and %s saw different checkpoints in the run (one was added or finished in between): run every part again", names[0], name)
		case p.Until != first.Until || p.Probe != first.Probe || p.ProbeDType != first.ProbeDType || p.ProbeTokens != first.ProbeTokens ||
			p.Top != first.Top || p.OnsetFactor != first.OnsetFactor || p.UpdateWarn != first.UpdateWarn:
			return fmt.Errorf("%s and %s were run with different --until, --top, --onset-factor, --update-warn, --dtype or --tokens: run every part with the same flags", names[0], name)
		}
	}
	if err := checkPartNumbers(names, ks, first.Parts); err != nil {
		return err
	}
	// Every checkpoint read by two parts, and by the parts and now, is the same.
	seen := map[string][]partFile{}
	seenBy := map[string]string{}
	intervals := []diff.Interval{}
	for _, i := range partOrder(ks) {
		for _, c := range parts[i].Read {
			if prev, ok := seen[c.Path]; ok {
				if d := sameFiles(prev, c.Files); d != "" {
					return fmt.Errorf("the checkpoint %s changed between parts %s and %s: %s; run the parts again", c.Path, seenBy[c.Path], names[i], d)
				}
				continue
			}
			seen[c.Path], seenBy[c.Path] = c.Files, names[i]
		}
		intervals = append(intervals, parts[i].Intervals...)
	}
	es, _, err := bisectSeries(first.Args)
	if err != nil {
		return err
	}
	var now []diff.Ref
	for _, e := range diff.CompleteEntries(es) {
		now = append(now, diff.Ref{Path: e.Path, Step: e.Step})
	}
	if !slices.Equal(now, first.Series) {
		return fmt.Errorf("the run %v changed after the parts were computed (its complete checkpoints differ): run the parts again", first.Args)
	}
	paths := make([]string, 0, len(seen))
	for p := range seen {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		ids, err := checkpointIdentity(p)
		if err != nil {
			return err
		}
		if d := sameFiles(seen[p], ids); d != "" {
			return fmt.Errorf("the checkpoint %s changed after the parts were computed: %s; run the parts again", p, d)
		}
	}
	bo := bisectOptions{JSON: o.JSON, Color: o.Color, NoProgress: true, Until: first.Until, Probe: first.Probe,
		ProbeDType: first.ProbeDType, ProbeTokens: first.ProbeTokens, Top: first.Top, OnsetFactor: float64(first.OnsetFactor), UpdateWarn: float64(first.UpdateWarn), intervals: intervals}
	until, err := diff.ParseUntil(bo.Until)
	if err != nil {
		return err
	}
	return runBisect(bo, until, first.Args, stdout, stderr)
}
