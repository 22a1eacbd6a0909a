package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
)

// ckpt scan --part K/N: one part of a scan split across processes.

// scanPartJSON is the partial result of `ckpt scan --part K/N --json`.
type scanPartJSON struct {
	Kind       string                `json:"kind"`    // partKindScan
	Version    int                   `json:"version"` // partFormat
	Part       int                   `json:"part"`    // K
	Parts      int                   `json:"parts"`   // N
	Path       string                `json:"path"`    // the checkpoint as given
	Files      []partFile            `json:"files"`   // identity of every file of the checkpoint
	TensorList int                   `json:"tensor_count"`
	Options    partThresholds        `json:"options"`
	ChunkBytes int                   `json:"chunk_bytes"` // the chunking that fixes each accumulator's merge order
	Tensors    []scanPartTensor      `json:"tensors"`     // the tensors of this part, in checkpoint order
	Failures   []inspect.ReadFailure `json:"failures"`    // files this part could not read to the end
	ElapsedMS  int64                 `json:"elapsed_ms"`
}

// scanPartTensor is the exact result of scanning one tensor.
type scanPartTensor struct {
	Index   int     `json:"index"` // in the checkpoint's tensor list
	Name    string  `json:"name"`
	Acc     partAcc `json:"acc"`
	Skipped string  `json:"skipped,omitempty"`
}

// runScanPart scans part k of n of the checkpoint at path and writes the
// partial result as JSON. Findings are not judged here (outliers need every
// part), nor is the optimizer state (its checks need every state tensor's
// counts; merge runs them): a part that was written exits 0.
func runScanPart(o scanOptions, k, n int, paths []string, stdout, stderr io.Writer) error {
	if !o.JSON {
		return usagef("add --json and send stdout to a file; ckpt merge reads the parts", "--part writes a partial result, which needs --json")
	}
	if o.Markdown || o.JUnit != "" || o.All || o.Strict {
		return usagef("give --markdown, --junit, --all or --strict to ckpt merge", "--part writes a partial result; report options belong to ckpt merge")
	}
	if len(paths) != 1 {
		return usagef("run one part per checkpoint", "--part scans one checkpoint, not %d", len(paths))
	}
	opts, err := o.inspectOptions()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	return forEachPath(paths, stderr, func(path string) (bool, error) {
		c, err := formats.Open(path)
		if err != nil {
			return false, err
		}
		ids, err := fileIdentities(c)
		if err != nil {
			return false, err
		}
		assign := inspect.Partition(c, n)
		var bytes int64
		for i, t := range c.Tensors {
			if assign[i] == k {
				bytes += inspect.PartWeight(t)
			}
		}
		bar := newByteProgress(stderr, bytes, "scan "+path, !o.NoProgress)
		opts := opts
		opts.Progress = bar.Add
		start := time.Now()
		pr, err := inspect.ScanTensors(ctx, c, opts, func(i int) bool { return assign[i] == k })
		bar.Done()
		if err != nil {
			return false, err
		}
		out := scanPartJSON{Kind: partKindScan, Version: partFormat, Part: k, Parts: n, Path: c.Path, Files: ids,
			TensorList: len(c.Tensors), ChunkBytes: inspect.DefaultChunkBytes, Options: toPartThresholds(o.Thresholds, opts.TargetDType, o.UpdateWarn),
			Tensors: []scanPartTensor{}, Failures: pr.Failures, ElapsedMS: time.Since(start).Milliseconds()}
		if out.Failures == nil {
			out.Failures = []inspect.ReadFailure{}
		}
		for i, ts := range pr.Tensors {
			if ts != nil {
				out.Tensors = append(out.Tensors, scanPartTensor{Index: i, Name: ts.Name, Acc: toPartAcc(ts.Acc), Skipped: ts.Skipped})
			}
		}
		return false, writeJSON(stdout, out)
	})
}
