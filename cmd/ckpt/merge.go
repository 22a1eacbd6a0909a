package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
)

// ckpt merge: combine the parts of a split scan (or bisect timeline) into the
// report one process would have written.

func init() {
	register(command{
		name:    "merge",
		summary: "combine the parts of 'scan --part' or 'bisect --pairs-part' into one report",
		run:     runMergeCmd,
	})
}

func runMergeCmd(args []string, stdout, stderr io.Writer) error {
	var o scanOptions
	fs := newFlagSet("merge", "merge [flags] PART...", stderr)
	fs.BoolVar(&o.JSON, "json", false, "print the report as JSON (as 'ckpt scan --json' or 'ckpt bisect --json' would)")
	fs.BoolVar(&o.Markdown, "markdown", false, "print a Markdown report (scan parts only)")
	fs.BoolVar(&o.All, "all", false, "list every tensor in the table, healthy ones included (scan parts only)")
	fs.BoolVar(&o.Strict, "strict", false, "exit 1 on warnings too, not only on errors")
	fs.StringVar(&o.Color, "color", "auto", "colour the text output: "+colorModes+" (NO_COLOR turns it off)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("give every part file, e.g. ckpt merge part-*.json", "merge needs the PART files written by 'ckpt scan --part K/N --json' or 'ckpt bisect --pairs-part K/N --json'")
	}
	if o.JSON && o.Markdown {
		return usagef("pick one output format", "--json and --markdown cannot be used together")
	}
	raws, kind, err := readParts(fs.Args())
	if err != nil {
		return err
	}
	switch kind {
	case partKindScan:
		return mergeScan(o, fs.Args(), raws, stdout, stderr)
	default:
		return mergeBisect(o, fs.Args(), raws, stdout, stderr)
	}
}

// readParts reads every part file and checks that they are parts of one kind
// and of this version of the format.
func readParts(names []string) ([][]byte, string, error) {
	var raws [][]byte
	kind := ""
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, "", err
		}
		var head struct {
			Kind    string `json:"kind"`
			Version int    `json:"version"`
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(&head); err != nil {
			return nil, "", fmt.Errorf("%s: not a part file (not one JSON object: %v); was it cut short?", name, err)
		}
		if dec.More() {
			return nil, "", fmt.Errorf("%s: holds more than one JSON object; write one part per file", name)
		}
		switch {
		case head.Kind != partKindScan && head.Kind != partKindBisect:
			return nil, "", fmt.Errorf("%s: not a part file (kind %q; want the output of 'ckpt scan --part K/N --json' or 'ckpt bisect --pairs-part K/N --json')", name, head.Kind)
		case head.Version != partFormat:
			return nil, "", fmt.Errorf("%s: part format version %d; this ckpt reads version %d (run every part and the merge with the same ckpt)", name, head.Version, partFormat)
		case kind != "" && head.Kind != kind:
			return nil, "", fmt.Errorf("%s: a %s, but %s is a %s: merge the parts of one job", name, head.Kind, names[0], kind)
		}
		kind = head.Kind
		raws = append(raws, b)
	}
	return raws, kind, nil
}

// decodeParts decodes every part file (of the kind what names) into a T and
// returns them with their part numbers.
func decodeParts[T any](names []string, raws [][]byte, what string, part func(*T) int) ([]T, []int, error) {
	parts := make([]T, len(raws))
	ks := make([]int, len(raws))
	for i, b := range raws {
		if err := json.Unmarshal(b, &parts[i]); err != nil {
			return nil, nil, fmt.Errorf("%s: a damaged %s part: %v", names[i], what, err)
		}
		ks[i] = part(&parts[i])
	}
	return parts, ks, nil
}

// partOrder is the indices of ks in increasing part number.
func partOrder(ks []int) []int {
	order := make([]int, len(ks))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return ks[order[a]] < ks[order[b]] })
	return order
}

// checkPartNumbers checks that the parts (ks[i] is the number of the part in
// file names[i]) are each part 0..n-1 exactly once.
func checkPartNumbers(names []string, ks []int, n int) error {
	if n < 1 {
		return fmt.Errorf("%s: a part of %d parts: a damaged part file", names[0], n)
	}
	owner := map[int]string{}
	for i, k := range ks {
		if k < 0 || k >= n {
			return fmt.Errorf("%s: part %d of %d is out of range", names[i], k, n)
		}
		if prev, ok := owner[k]; ok {
			return fmt.Errorf("%s and %s are both part %d/%d: give each part once", prev, names[i], k, n)
		}
		owner[k] = names[i]
	}
	if len(owner) == n {
		return nil
	}
	var missing []string
	for k := 0; k < n && len(missing) < 20; k++ {
		if _, ok := owner[k]; !ok {
			missing = append(missing, fmt.Sprintf("%d/%d", k, n))
		}
	}
	if n-len(owner) > len(missing) {
		missing = append(missing, "…")
	}
	return fmt.Errorf("missing part(s) %s: %d of %d parts given; every part must have finished and be given", strings.Join(missing, ", "), len(owner), n)
}

// mergeScan merges the parts of one split scan and prints the report.
func mergeScan(o scanOptions, names []string, raws [][]byte, stdout, stderr io.Writer) error {
	parts, ks, err := decodeParts(names, raws, "scan", func(p *scanPartJSON) int { return p.Part })
	if err != nil {
		return err
	}
	first := parts[0]
	for i, p := range parts[1:] {
		name := names[i+1]
		switch {
		case p.Path != first.Path:
			return fmt.Errorf("%s scanned %s but %s scanned %s: merge the parts of one checkpoint", names[0], first.Path, name, p.Path)
		case p.Parts != first.Parts:
			return fmt.Errorf("%s is a part of %d but %s a part of %d: every part must be cut with the same N", names[0], first.Parts, name, p.Parts)
		case p.Options != first.Options:
			return fmt.Errorf("%s and %s were scanned with different thresholds or --target-dtype: run every part with the same flags", names[0], name)
		}
		if d := sameFiles(first.Files, p.Files); d != "" {
			return fmt.Errorf("the checkpoint changed between parts %s and %s: %s; scan it again once it is no longer written", names[0], name, d)
		}
	}
	if err := checkPartNumbers(names, ks, first.Parts); err != nil {
		return err
	}
	for i, p := range parts {
		if p.ChunkBytes != inspect.DefaultChunkBytes {
			return fmt.Errorf("%s: scanned in chunks of %d bytes, this ckpt uses %d: run every part and the merge with the same ckpt", names[i], p.ChunkBytes, inspect.DefaultChunkBytes)
		}
	}
	c, err := formats.Open(first.Path)
	if err != nil {
		return fmt.Errorf("reopening the checkpoint the parts scanned (merge reads its headers): %w", err)
	}
	now, err := fileIdentities(c)
	if err != nil {
		return err
	}
	if d := sameFiles(first.Files, now); d != "" {
		return fmt.Errorf("%s changed after the parts were scanned: %s; scan it again", first.Path, d)
	}
	if len(c.Tensors) != first.TensorList {
		return fmt.Errorf("%s now lists %d tensors, the parts %d; scan it again", first.Path, len(c.Tensors), first.TensorList)
	}
	assign := inspect.Partition(c, first.Parts)
	stats := make([]*inspect.TensorStats, len(c.Tensors))
	var failures []inspect.ReadFailure
	var elapsed time.Duration
	for _, i := range partOrder(ks) {
		p := parts[i]
		for _, t := range p.Tensors {
			if t.Index < 0 || t.Index >= len(c.Tensors) || c.Tensors[t.Index].Name != t.Name || assign[t.Index] != p.Part {
				return fmt.Errorf("%s: tensor %q (#%d) does not belong to part %d/%d of %s", names[i], t.Name, t.Index, p.Part, p.Parts, first.Path)
			}
			if stats[t.Index] != nil {
				return fmt.Errorf("%s: tensor %q is given twice", names[i], t.Name)
			}
			stats[t.Index] = inspect.PartStats(c.Tensors[t.Index], t.Acc.acc(), t.Skipped)
		}
		failures = append(failures, p.Failures...)
		elapsed = max(elapsed, time.Duration(p.ElapsedMS)*time.Millisecond)
	}
	for i, ts := range stats {
		if ts == nil {
			return fmt.Errorf("part %d/%d holds no result for tensor %q: was it written by another version of ckpt?", assign[i], first.Parts, c.Tensors[i].Name)
		}
	}
	th, target := first.Options.thresholds()
	iopts := inspect.Options{Thresholds: th, TargetDType: target}
	r, err := inspect.Assemble(c, stats, failures, iopts)
	if err != nil {
		return err
	}
	// The optimizer view, as scan computes it after its scan: the state
	// tensors' counts come from the parts; the predicted update reads the
	// moments and weights it needs here.
	ctx, stop := signalContext()
	defer stop()
	opt, err := optimizerOf(ctx, r, true, float64(first.Options.UpdateWarn), iopts)
	if err != nil {
		return err
	}
	color, err := useColor(o.Color, stdout)
	if err != nil {
		return err
	}
	if err := writeScanReport(stdout, o, styler{on: color}, r, opt, nil, elapsed, true); err != nil {
		return err
	}
	if scanFailed(o, r) {
		return errFindings
	}
	return nil
}
