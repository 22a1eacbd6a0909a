package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
	"github.com/ckpt-tool/ckpt/optim"
)

// JSON output shared by every command. Each command's --json prints one JSON
// object per input (per PATH for inspect and scan), each on one line: with one
// PATH stdout is exactly one JSON document; with several it is JSON Lines, which
// jq reads as it reads a single object (jq -s collects an array).

// writeJSON writes v as one line of compact JSON followed by a newline. Besides
// what encoding/json escapes (C0 controls, U+2028, U+2029, invalid UTF-8 made
// U+FFFD), DEL, the C1 controls and invisible format characters (bidirectional
// overrides) are written as \u escapes, so JSON printed on a terminal cannot
// control it either. The output is valid JSON and decodes to the same strings.
func writeJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encoding JSON: %w", err)
	}
	_, err := w.Write(escapeJSONControls(buf.Bytes()))
	return err
}

// escapeJSONControls rewrites, in encoded JSON, every rune needsEscape flags as a
// \u escape. Outside strings JSON is ASCII without controls, so only string
// contents change.
func escapeJSONControls(b []byte) []byte {
	i := 0
	for i < len(b) {
		r, n := utf8.DecodeRune(b[i:])
		if r != '\n' && needsEscape(r) {
			break
		}
		i += n
	}
	if i == len(b) {
		return b
	}
	out := append([]byte(nil), b[:i]...)
	for i < len(b) {
		r, n := utf8.DecodeRune(b[i:])
		if r != '\n' && needsEscape(r) {
			if r > 0xFFFF {
				hi, lo := utf16.EncodeRune(r)
				out = fmt.Appendf(out, `\u%04x\u%04x`, hi, lo)
			} else {
				out = fmt.Appendf(out, `\u%04x`, r)
			}
		} else {
			out = append(out, b[i:i+n]...)
		}
		i += n
	}
	return out
}

// jsonFile is one file of a checkpoint in inspect and scan JSON. path, bytes and
// tensors are the contract; the rest are additions.
type jsonFile struct {
	Path        string            `json:"path"`
	Bytes       int64             `json:"bytes"`
	Tensors     int               `json:"tensors"`
	Name        string            `json:"name"`                   // name inside the checkpoint (shard name)
	HeaderBytes *uint64           `json:"header_bytes,omitempty"` // JSON header length, when it could be read
	Valid       bool              `json:"valid"`                  // passes every read rule
	Metadata    map[string]string `json:"metadata,omitempty"`     // __metadata__ (inspect only); GGUF: each key's value in brief
	Format      string            `json:"format,omitempty"`       // the container, when not safetensors ("gguf")
	GGUF        *jsonGGUF         `json:"gguf,omitempty"`         // GGUF header facts (inspect only)
}

// jsonGGUF summarises a GGUF header: its version, what the model is, and the
// tokenizer in one line (the token list itself is never dumped).
type jsonGGUF struct {
	Version       uint32 `json:"version"`
	Architecture  string `json:"architecture,omitempty"`
	ContextLength uint64 `json:"context_length,omitempty"`
	Tokenizer     string `json:"tokenizer,omitempty"`
	Alignment     uint64 `json:"alignment"`
	DataStart     int64  `json:"data_start"`
	KVCount       uint64 `json:"kv_count"`
}

// jsonFiles describes the files of c; withMetadata adds each file's __metadata__.
func jsonFiles(c *formats.Checkpoint, withMetadata bool) []jsonFile {
	out := make([]jsonFile, 0, len(c.Files))
	for _, f := range c.Files {
		jf := jsonFile{Path: f.Path, Bytes: f.Size, Name: f.Name, Valid: f.Valid(), Tensors: len(f.Tensors())}
		if f.Format() != formats.ContainerSafetensors {
			jf.Format = string(f.Format())
		}
		if h := f.GGUF; h != nil {
			n := uint64(h.DataStart)
			jf.HeaderBytes = &n
			if withMetadata {
				ctx, _ := h.ContextLength()
				jf.GGUF = &jsonGGUF{Version: h.Version, Architecture: h.Architecture(), ContextLength: ctx,
					Tokenizer: h.TokenizerSummary(), Alignment: h.Alignment, DataStart: h.DataStart, KVCount: h.KVCount}
				jf.Metadata = make(map[string]string, len(h.KV))
				for _, kv := range h.KV {
					jf.Metadata[kv.Key] = kv.Value.String()
				}
			}
		}
		if f.Header != nil {
			jf.Tensors = len(f.Header.Tensors)
			n := f.Header.Len
			jf.HeaderBytes = &n
			if withMetadata {
				jf.Metadata = f.Header.Metadata
			}
		}
		out = append(out, jf)
	}
	return out
}

// jsonFindings returns findings for JSON: never null.
func jsonFindings(f []inspect.Finding) []inspect.Finding {
	if f == nil {
		return []inspect.Finding{}
	}
	return f
}

// jsonShape returns a shape for JSON: a scalar is [], never null.
func jsonShape(s []uint64) []uint64 {
	if s == nil {
		return []uint64{}
	}
	return s
}

// scanReportJSON is `ckpt scan --json` for one checkpoint: the DESIGN.md
// contract (path, files, tensors, findings, summary) plus additions.
type scanReportJSON struct {
	Path     string            `json:"path"`
	Layout   string            `json:"layout"`
	Files    []jsonFile        `json:"files"`
	Tensors  []scanTensorJSON  `json:"tensors"`
	Findings []inspect.Finding `json:"findings"`
	Summary  inspect.Summary   `json:"summary"`
	// Optimizer is the optimizer view of a checkpoint with optimizer state.
	Optimizer *optim.State `json:"optimizer,omitempty"`
}

// scanTensorJSON is one tensor of a scan. Statistics are over finite values and
// null when the tensor has none (or was not scanned).
type scanTensorJSON struct {
	Name   string   `json:"name"`
	File   string   `json:"file"`
	DType  string   `json:"dtype"`
	Shape  []uint64 `json:"shape"`
	Numel  uint64   `json:"numel"`
	NaN    uint64   `json:"nan"`
	PosInf uint64   `json:"posinf"`
	NegInf uint64   `json:"neginf"`
	Zeros  uint64   `json:"zeros"`
	Min    *float64 `json:"min"`
	Max    *float64 `json:"max"`
	AbsMax *float64 `json:"absmax"`
	Mean   *float64 `json:"mean"`
	Std    *float64 `json:"std"`
	L2     *float64 `json:"l2"`
	// Additions to the contract.
	Finite               uint64   `json:"finite"`
	Subnormals           uint64   `json:"subnormals"`
	FirstNonfiniteIndex  *int64   `json:"first_nonfinite_index"`            // flat C-order index, null when all finite
	FirstNonfiniteCoords []uint64 `json:"first_nonfinite_coords,omitempty"` // the same as coordinates
	Scanned              bool     `json:"scanned"`
	Skipped              string   `json:"skipped,omitempty"` // why it was not scanned
	// GGUF block types: blocks whose scale is NaN or infinite, and elements
	// whose values are not decoded (grid IQ types: only scales checked).
	BadScales uint64 `json:"bad_scales,omitempty"`
	Undecoded uint64 `json:"undecoded,omitempty"`
	TensorLayout
}

// TensorLayout is what a tensor's JSON adds when it is not a plain
// safetensors tensor: its container, the tensor it is tied to (same bytes,
// scanned once) and whether it is a non-contiguous view.
type TensorLayout struct {
	Format     string `json:"format,omitempty"`
	TiedTo     string `json:"tied_to,omitempty"`
	Contiguous *bool  `json:"contiguous,omitempty"`
	// Param names the parameter an optimizer state tensor belongs to.
	Param string `json:"param,omitempty"`
}

// tensorLayout describes t for JSON.
func tensorLayout(t *formats.Tensor) TensorLayout {
	var l TensorLayout
	if t == nil || t.File == nil || t.File.Format() == formats.ContainerSafetensors {
		return l
	}
	l.Format, l.TiedTo = string(t.File.Format()), t.TiedTo
	if !t.Contiguous() {
		f := false
		l.Contiguous = &f
	}
	return l
}

// finiteOrNull returns a pointer to v, or nil (JSON null) when there is no
// finite value to describe or v itself is not finite.
func finiteOrNull(have bool, v float64) *float64 {
	if !have || math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// scanTensor converts one tensor's scan result.
func scanTensor(t *inspect.TensorStats) scanTensorJSON {
	have := t.Finite > 0 && t.Skipped == ""
	j := scanTensorJSON{
		Name: t.Name, File: t.File, DType: string(t.DType), Shape: jsonShape(t.Shape), Numel: t.Numel,
		NaN: t.NaN, PosInf: t.PosInf, NegInf: t.NegInf, Zeros: t.Zeros,
		Min: finiteOrNull(have, t.Min), Max: finiteOrNull(have, t.Max), AbsMax: finiteOrNull(have, t.AbsMax),
		Mean: finiteOrNull(have, t.Mean), Std: finiteOrNull(have, t.Std()), L2: finiteOrNull(have, t.L2()),
		Finite: t.Finite, Subnormals: t.Subnormal, Scanned: t.Skipped == "", Skipped: t.Skipped,
		BadScales: t.BadScales, Undecoded: t.Undecoded,
	}
	if t.FirstBad >= 0 {
		i := t.FirstBad
		j.FirstNonfiniteIndex = &i
		j.FirstNonfiniteCoords = t.FirstBadCoords
	}
	return j
}

// scanReportWithOptimizer is scanReport with the optimizer view of s.
func scanReportWithOptimizer(r *inspect.Result, s *optim.State) scanReportJSON {
	out := scanReport(r)
	out.Optimizer = s
	params := paramOfTensor(s)
	for i := range out.Tensors {
		out.Tensors[i].Param = params[out.Tensors[i].Name]
	}
	return out
}

// scanReport builds the JSON report of one scan.
func scanReport(r *inspect.Result) scanReportJSON {
	out := scanReportJSON{
		Path:     r.Path,
		Files:    []jsonFile{},
		Tensors:  make([]scanTensorJSON, 0, len(r.Tensors)),
		Findings: jsonFindings(r.Findings),
		Summary:  r.Summary,
	}
	if r.Checkpoint != nil {
		out.Layout = string(r.Checkpoint.Layout)
		out.Files = jsonFiles(r.Checkpoint, false)
	}
	for i, t := range r.Tensors {
		j := scanTensor(t)
		if r.Checkpoint != nil && i < len(r.Checkpoint.Tensors) {
			j.TensorLayout = tensorLayout(r.Checkpoint.Tensors[i])
		}
		out.Tensors = append(out.Tensors, j)
	}
	return out
}
