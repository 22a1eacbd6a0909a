package main

import (
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"

	"github.com/ckpt-tool/ckpt/formats"
)

// metadataShown is how many characters of a metadata value the text view shows;
// --json prints values whole.
const metadataShown = 120

// layoutText describes a checkpoint layout in words.
func layoutText(c *formats.Checkpoint) string {
	if len(c.Files) > 0 && c.Files[0].Format() != formats.ContainerSafetensors {
		switch c.Layout {
		case formats.LayoutFile:
			return "PyTorch file"
		case formats.LayoutSingle, formats.LayoutAdapter:
			return "checkpoint directory (" + c.Files[0].Name + ")"
		case formats.LayoutFiles:
			return "directory of PyTorch files"
		}
	}
	switch c.Layout {
	case formats.LayoutFile:
		return "safetensors file"
	case formats.LayoutSingle:
		return "checkpoint directory (model.safetensors)"
	case formats.LayoutSharded:
		if c.Index != nil {
			return "sharded checkpoint (" + filepath.Base(c.Index.Path) + ")"
		}
		return "sharded checkpoint"
	case formats.LayoutAdapter:
		return "adapter (adapter_model.safetensors)"
	case formats.LayoutFiles:
		return "directory of safetensors files"
	}
	return string(c.Layout)
}

// fileShortener returns how a checkpoint's files are named in findings and
// tables: by their name inside the checkpoint, or not at all for a checkpoint
// that is one file (its path heads the report).
func fileShortener(c *formats.Checkpoint) func(string) string {
	names := map[string]string{}
	for _, f := range c.Files {
		names[f.Path] = f.Name
	}
	return func(p string) string {
		if c.Layout == formats.LayoutFile && p == c.Path {
			return ""
		}
		if n, ok := names[p]; ok {
			return n
		}
		return p
	}
}

// writeInspectText prints the text view of one inspection.
func writeInspectText(w io.Writer, st styler, c *formats.Checkpoint, rep *inspectReport, summaryOnly bool) {
	s := rep.Summary
	fmt.Fprintf(w, "%s: %s, %s, %s, %s, %s parameters\n", st.Bold(safeText(rep.Path)), layoutText(c),
		plural(len(rep.Files), "file"), formats.HumanBytes(s.Bytes), plural(s.Tensors, "tensor"), groupDigits(s.Parameters))

	if len(rep.Files) > 0 {
		fmt.Fprintln(w)
		ft := textTable{header: []string{"FILE", "BYTES", "TENSORS", "HEADER", "STATUS"}, right: map[int]bool{1: true, 2: true, 3: true}}
		for _, f := range rep.Files {
			header := "-"
			if f.HeaderBytes != nil {
				header = formats.HumanBytes(int64(min(*f.HeaderBytes, 1<<62)))
			}
			status := cell{text: "ok", style: st.Green}
			if !f.Valid {
				status = cell{text: "malformed", style: st.Red}
			}
			ft.addCells(cell{text: safeText(f.Name)}, cell{text: formats.HumanBytes(f.Bytes)},
				cell{text: fmt.Sprint(f.Tensors)}, cell{text: header}, status)
		}
		ft.write(w, st.Bold)
	}

	writeMetadata(w, st, rep.Files)

	if !summaryOnly && len(rep.Tensors) > 0 {
		fmt.Fprintln(w)
		header := []string{"TENSOR", "DTYPE", "SHAPE", "PARAMETERS", "BYTES"}
		multi := len(rep.Files) > 1
		if multi {
			header = append(header, "SHARD")
		}
		tt := textTable{header: header, right: map[int]bool{3: true, 4: true}}
		for _, t := range rep.Tensors {
			row := []cell{{text: safeText(t.Name)}, {text: t.DType}, {text: shapeText(t.Shape)},
				{text: groupDigits(t.Numel)}, {text: formats.HumanBytes(int64(min(t.Bytes, 1<<62)))}}
			if multi {
				row = append(row, cell{text: safeText(t.Shard)})
			}
			if t.Cut {
				row = append(row, cell{text: "cut short: the file ends inside it", style: st.Red})
			}
			tt.addCells(row...)
		}
		tt.write(w, st.Bold)
	}

	if len(rep.DTypes) > 0 {
		fmt.Fprintln(w)
		dt := textTable{header: []string{"DTYPE", "TENSORS", "PARAMETERS", "BYTES"}, right: map[int]bool{1: true, 2: true, 3: true}}
		for _, d := range rep.DTypes {
			dt.add(d.DType, fmt.Sprint(d.Tensors), groupDigits(d.Parameters), formats.HumanBytes(int64(min(d.Bytes, 1<<62))))
		}
		dt.write(w, st.Bold)
	}

	if len(rep.Findings) > 0 {
		fmt.Fprintf(w, "\n%s\n", st.Bold("FINDINGS"))
		writeFindings(w, st, rep.Findings, fileShortener(c))
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, inspectVerdict(st, rep))
}

// writeMetadata prints each file's __metadata__, escaped, long values cut;
// files whose metadata is identical (the shards of one save) share one block.
func writeMetadata(w io.Writer, st styler, files []jsonFile) {
	var groups [][]int // indexes of files with equal metadata, in file order
	for i, f := range files {
		if len(f.Metadata) == 0 {
			continue
		}
		placed := false
		for g, idx := range groups {
			if maps.Equal(files[idx[0]].Metadata, f.Metadata) {
				groups[g] = append(idx, i)
				placed = true
				break
			}
		}
		if !placed {
			groups = append(groups, []int{i})
		}
	}
	for _, idx := range groups {
		md := files[idx[0]].Metadata
		which := safeText(files[idx[0]].Name)
		if len(idx) > 1 {
			which = fmt.Sprintf("%s (and %s with the same metadata)", which, plural(len(idx)-1, "other file"))
			switch {
			case len(idx) == 2 && len(files) == 2:
				which = "both files"
			case len(idx) == len(files):
				which = fmt.Sprintf("all %d files", len(files))
			}
		}
		fmt.Fprintf(w, "\n%s %s:\n", st.Bold("metadata of"), which)
		keys := slices.Sorted(maps.Keys(md))
		mt := textTable{}
		for _, k := range keys {
			v := safeText(md[k])
			if textWidth(v) > metadataShown {
				v = truncateText(v, metadataShown) + st.Dim(fmt.Sprintf(" (%d characters; --json shows all)", textWidth(md[k])))
			}
			mt.add("  "+truncateText(safeText(k), 40), v)
		}
		mt.write(w, nil)
	}
}

// inspectVerdict is the last line of the text view.
func inspectVerdict(st styler, rep *inspectReport) string {
	counts := findingCounts(rep.Findings)
	if !rep.Summary.Healthy {
		return st.BoldRed("MALFORMED") + ": " + counts
	}
	msg := "no format problems"
	if counts != "" {
		msg = "no format errors; " + counts
	}
	return st.BoldGreen("OK") + ": " + msg + "; headers only, run 'ckpt scan' to check the values"
}
