package inspect

import (
	"github.com/ckpt-tool/ckpt/formats"
)

// Finding is one thing a check found; the JSON field names are a contract (see
// DESIGN.md).
type Finding struct {
	Severity string `json:"severity"` // error, warning or info
	Check    string `json:"check"`    // nonfinite, outlier, format, ...
	Tensor   string `json:"tensor"`
	File     string `json:"file"`
	Message  string `json:"message"`
	// For check "pickle": the global the pickle names and the byte offset of
	// the opcode naming it.
	Global string `json:"global,omitempty"`
	Offset *int64 `json:"offset,omitempty"`
}

// Check names.
const (
	CheckNonFinite = "nonfinite"
	CheckOutlier   = "outlier"
	CheckFormat    = "format"
	CheckEmpty     = "empty"
	// CheckPickle: a PyTorch pickle names code (error) or a class outside
	// the allow-list (warning).
	CheckPickle = "pickle"
	// CheckIncomplete: a trainer checkpoint without trainer_state.json (written
	// last) whose shards are short or missing: still being written, or its save
	// was interrupted.
	CheckIncomplete = "incomplete"
)

// TensorStats is the scan result of one tensor.
type TensorStats struct {
	Name  string
	File  string
	DType formats.DType
	Shape []uint64
	Numel uint64
	Acc
	FirstBadCoords []uint64 // coordinates of FirstBad, nil when none
	Skipped        string   // why the tensor was not scanned ("" when it was)
}

// FileSummary is one scanned file.
type FileSummary struct {
	Path    string `json:"path"`
	Bytes   int64  `json:"bytes"`
	Tensors int    `json:"tensors"`
}

// Summary totals a scan.
type Summary struct {
	Tensors          int   `json:"tensors"`
	Bytes            int64 `json:"bytes"`
	NonFiniteTensors int   `json:"nonfinite_tensors"`
	Errors           int   `json:"errors"`
	Warnings         int   `json:"warnings"`
	Healthy          bool  `json:"healthy"`
}

// Result is the scan of one checkpoint.
type Result struct {
	Path       string
	Checkpoint *formats.Checkpoint
	Files      []FileSummary
	Tensors    []*TensorStats // in checkpoint order
	Findings   []Finding      // worst first
	Summary    Summary
}

// Healthy reports whether the scan found no error.
func (r *Result) Healthy() bool { return r.Summary.Healthy }

// Coords converts a flat C-order index into coordinates of shape.
func Coords(shape []uint64, flat uint64) []uint64 {
	out := make([]uint64, len(shape))
	for i := len(shape) - 1; i >= 0; i-- {
		if shape[i] == 0 {
			return out
		}
		out[i] = flat % shape[i]
		flat /= shape[i]
	}
	return out
}
