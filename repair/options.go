package repair

import (
	"errors"
	"fmt"

	"github.com/ckpt-tool/ckpt/inspect"
)

// Strategy says which tensors of BAD are taken from GOOD.
type Strategy string

const (
	// Tensors replaces every tensor of BAD that has an error finding.
	Tensors Strategy = "tensors"
	// Layers replaces every tensor of each transformer block (model.layers.N.*)
	// that holds a damaged tensor; damaged tensors outside blocks are replaced
	// alone.
	Layers Strategy = "layers"
	// All takes every tensor from GOOD, written in BAD's layout: a verified
	// rollback.
	All Strategy = "all"
)

// Strategies lists the strategies, the default first.
func Strategies() []Strategy { return []Strategy{Tensors, Layers, All} }

// ParseStrategy accepts a strategy's name; "" is the default, Tensors.
func ParseStrategy(s string) (Strategy, error) {
	switch Strategy(s) {
	case "", Tensors:
		return Tensors, nil
	case Layers, All:
		return Strategy(s), nil
	}
	return "", fmt.Errorf("%w: unknown strategy %q (want tensors, layers or all)", ErrOptions, s)
}

// ErrOptions means the options of a repair are inconsistent (a usage mistake).
var ErrOptions = errors.New("invalid repair options")

// Phase names a stage of a repair, for progress reporting.
type Phase string

const (
	PhaseScanBad  Phase = "scan BAD"
	PhaseScanGood Phase = "scan GOOD"
	PhaseWrite    Phase = "write"
	PhaseVerify   Phase = "verify"
)

// DefaultChunkBytes is how many bytes are copied at a time: the memory a repair
// needs is a small multiple of it, whatever the model's size.
const DefaultChunkBytes = 4 << 20

// ProvenanceKey is the __metadata__ key of the provenance entry added to every
// written file. An entry already there (a repair of a repaired checkpoint) is
// kept under PreviousProvenanceKey.
const (
	ProvenanceKey         = "ckpt_repair"
	PreviousProvenanceKey = "ckpt_repair_previous"
)

// Options configure a repair.
type Options struct {
	Bad      string   // the damaged checkpoint: a .safetensors file or a checkpoint directory
	Good     string   // the healthy checkpoint to take tensors from
	Out      string   // where to write the result (a file when Bad is a file, else a directory)
	Strategy Strategy // "" means Tensors
	// Elements replaces only the non-finite elements of damaged tensors by GOOD's
	// values at the same positions. The result mixes two training states.
	Elements bool
	// Force replaces an existing Out (atomically); it never writes into an input.
	Force bool
	// Version is the tool version recorded in the provenance entry.
	Version string
	// ChunkBytes is the copy unit; 0 means DefaultChunkBytes.
	ChunkBytes int
	// Scan configures the scans of BAD, GOOD and the written result (its
	// Progress is ignored: use Progress below).
	Scan inspect.Options
	// Progress, when set, is called at the start of each phase with the bytes
	// it will read or write, and returns the function to call as bytes are done.
	Progress func(phase Phase, total int64) func(n int64)

	hooks *hooks // test hooks; nil in production
}

// hooks let tests inject failures into the output side of a repair.
type hooks struct {
	// fault, when set, is called before every write, sync and rename of the
	// output with the operation's name and the file's path; a non-nil error is
	// returned as if the operating system had failed it.
	fault func(op, path string) error
	// skipSpaceCheck disables the free-space check made before writing.
	skipSpaceCheck bool
	// buffered copies every byte through the process (no copy_file_range).
	buffered bool
}

func (o *Options) validate() error {
	if o.Bad == "" || o.Good == "" {
		return fmt.Errorf("%w: both BAD and GOOD are needed", ErrOptions)
	}
	if o.Out == "" {
		return fmt.Errorf("%w: an output path is needed", ErrOptions)
	}
	s, err := ParseStrategy(string(o.Strategy))
	if err != nil {
		return err
	}
	o.Strategy = s
	if o.Elements && s != Tensors {
		return fmt.Errorf("%w: element repair works on the damaged tensors alone; it cannot be combined with strategy %q", ErrOptions, s)
	}
	if o.ChunkBytes < 0 {
		return fmt.Errorf("%w: chunk size must not be negative", ErrOptions)
	}
	if o.ChunkBytes == 0 {
		o.ChunkBytes = DefaultChunkBytes
	}
	// Element merges need whole elements in every chunk (8 bytes covers every
	// byte-aligned dtype, C64 included).
	o.ChunkBytes = max(8, o.ChunkBytes/8*8)
	return nil
}

func (o *Options) progress(p Phase, total int64) func(int64) {
	if o.Progress == nil {
		return func(int64) {}
	}
	if f := o.Progress(p, total); f != nil {
		return f
	}
	return func(int64) {}
}
