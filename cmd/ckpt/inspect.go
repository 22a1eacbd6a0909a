package main

import (
	"context"
	"io"
	"math"
	"sort"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
	"github.com/ckpt-tool/ckpt/optim"
	"github.com/ckpt-tool/ckpt/remote"
)

// ckpt inspect: the header-level view of a checkpoint (no tensor data is read).

func init() {
	register(command{
		name:    "inspect",
		summary: "header-level view: tensors, dtypes, shapes, shards, metadata, format problems",
		run:     runInspectCmd,
	})
}

// inspectOptions are the flags of ckpt inspect.
type inspectOptions struct {
	JSON    bool   // one JSON object per path
	Summary bool   // omit the per-tensor table
	Color   string // auto, always, never
}

func runInspectCmd(args []string, stdout, stderr io.Writer) error {
	var o inspectOptions
	fs := newFlagSet("inspect", "inspect [flags] PATH...", stderr)
	fs.BoolVar(&o.JSON, "json", false, "print one JSON object per PATH (the scan contract without value statistics)")
	fs.BoolVar(&o.Summary, "summary", false, "omit the per-tensor table (files, metadata, dtype totals and findings only)")
	fs.StringVar(&o.Color, "color", "auto", "colour the text output: "+colorModes+" (NO_COLOR turns it off)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("run 'ckpt inspect --help'", "inspect needs at least one PATH (a .safetensors, PyTorch or .gguf file, or a checkpoint directory)")
	}
	return runInspect(o, fs.Args(), stdout, stderr)
}

// runInspect inspects each path and prints its report. A path that cannot be
// opened is an error (exit 2); format problems are findings (exit 1 when any is
// an error).
func runInspect(o inspectOptions, paths []string, stdout, stderr io.Writer) error {
	color, err := useColor(o.Color, stdout)
	if err != nil {
		return err
	}
	st := styler{on: color}
	first := true
	return forEachPath(paths, stderr, func(path string) (bool, error) {
		before := remote.Transferred()
		c, err := formats.Open(path)
		if err != nil {
			return false, err
		}
		rep := buildInspectReport(c)
		if formats.IsRemote(path) {
			rep.Network = networkSince(before)
		}
		if o.JSON {
			err = writeJSON(stdout, rep)
		} else {
			if !first {
				io.WriteString(stdout, "\n")
			}
			writeInspectText(stdout, st, c, rep, o.Summary)
			writeOptimizerText(stdout, rep.Optimizer)
			writeNetworkText(stdout, rep.Network)
		}
		first = false
		return !rep.Summary.Healthy, err
	})
}

// inspectReport is `ckpt inspect --json` for one checkpoint: the scan contract
// minus the value statistics, plus dtype totals and per-file metadata.
type inspectReport struct {
	Path     string            `json:"path"`
	Layout   string            `json:"layout"`
	Files    []jsonFile        `json:"files"`
	Tensors  []inspectTensor   `json:"tensors"`
	DTypes   []dtypeTotal      `json:"dtypes"`
	Findings []inspect.Finding `json:"findings"`
	Summary  inspectSummary    `json:"summary"`
	// Optimizer is the optimizer view of a checkpoint with optimizer state
	// (no values read: nonfinite and update_ratio are scan's).
	Optimizer *optim.State `json:"optimizer,omitempty"`
	// Network is what reading a remote checkpoint's headers transferred.
	Network *networkUse `json:"network,omitempty"`
}

// inspectTensor is one tensor as its header declares it.
type inspectTensor struct {
	Name   string   `json:"name"`
	File   string   `json:"file"`
	DType  string   `json:"dtype"`
	Shape  []uint64 `json:"shape"`
	Numel  uint64   `json:"numel"`
	Bytes  uint64   `json:"bytes"`
	Offset int64    `json:"offset"`        // absolute byte offset in its file
	Shard  string   `json:"shard"`         // the file's name inside the checkpoint
	Cut    bool     `json:"cut,omitempty"` // the file ends before this tensor does
	TensorLayout
}

// dtypeTotal totals the tensors of one dtype.
type dtypeTotal struct {
	DType      string `json:"dtype"`
	Tensors    int    `json:"tensors"`
	Parameters uint64 `json:"parameters"`
	Bytes      uint64 `json:"bytes"`
	// BitsPerWeight is 8·bytes/parameters: 16 for F16, 4.5 for Q4_K.
	BitsPerWeight float64 `json:"bits_per_weight"`
}

// inspectSummary totals an inspection. bytes is the size of the files on disk;
// parameters the sum of every tensor's element count.
type inspectSummary struct {
	Tensors    int    `json:"tensors"`
	Bytes      int64  `json:"bytes"`
	Parameters uint64 `json:"parameters"`
	Errors     int    `json:"errors"`
	Warnings   int    `json:"warnings"`
	Healthy    bool   `json:"healthy"`
}

// satAdd adds without wrapping: hostile headers can declare sizes whose sum
// overflows.
func satAdd(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}

// buildInspectReport describes c from its headers and format findings.
func buildInspectReport(c *formats.Checkpoint) *inspectReport {
	rep := &inspectReport{
		Path:    c.Path,
		Layout:  string(c.Layout),
		Files:   jsonFiles(c, true),
		Tensors: make([]inspectTensor, 0, len(c.Tensors)),
	}
	byDType := map[formats.DType]*dtypeTotal{}
	for _, t := range c.Tensors {
		rep.Tensors = append(rep.Tensors, inspectTensor{
			Name: t.Name, File: t.File.Path, DType: string(t.DType), Shape: jsonShape(t.Shape),
			Numel: t.Numel(), Bytes: t.Bytes(), Offset: t.Offset, Shard: t.File.Name, Cut: t.Cut,
			TensorLayout: tensorLayout(t),
		})
		d := byDType[t.DType]
		if d == nil {
			d = &dtypeTotal{DType: string(t.DType)}
			byDType[t.DType] = d
		}
		d.Tensors++
		d.Parameters = satAdd(d.Parameters, t.Numel())
		d.Bytes = satAdd(d.Bytes, t.Bytes())
		rep.Summary.Parameters = satAdd(rep.Summary.Parameters, t.Numel())
	}
	rep.DTypes = make([]dtypeTotal, 0, len(byDType))
	for _, d := range byDType {
		if d.Parameters > 0 {
			d.BitsPerWeight = 8 * float64(d.Bytes) / float64(d.Parameters)
		}
		rep.DTypes = append(rep.DTypes, *d)
	}
	sort.Slice(rep.DTypes, func(i, j int) bool {
		a, b := rep.DTypes[i], rep.DTypes[j]
		if a.Bytes != b.Bytes {
			return a.Bytes > b.Bytes
		}
		return a.DType < b.DType
	})
	rep.Findings = jsonFindings(inspect.FormatFindings(c))
	// The optimizer view: names and structural checks (the value checks are scan's).
	r := &inspect.Result{Path: c.Path, Checkpoint: c}
	if opt, _ := optimizerOf(context.Background(), r, false, 0, inspect.Options{}); opt != nil || len(r.Findings) > 0 {
		rep.Findings = append(rep.Findings, r.Findings...)
		rep.Optimizer = opt
		params := paramOfTensor(opt)
		for i := range rep.Tensors {
			rep.Tensors[i].Param = params[rep.Tensors[i].Name]
		}
	}
	inspect.SortFindings(rep.Findings)
	rep.Summary.Tensors = len(c.Tensors)
	rep.Summary.Bytes = c.TotalBytes()
	rep.Summary.Errors, rep.Summary.Warnings = countSeverities(rep.Findings)
	rep.Summary.Healthy = rep.Summary.Errors == 0
	return rep
}
