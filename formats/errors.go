package formats

import (
	"errors"
	"fmt"
)

// Sentinel errors, one per category. The first ten are the read rules of the
// reference safetensors reader, in the order it applies them; the rest are the
// diagnoses a forensics tool adds. Test with errors.Is.
var (
	ErrHeaderTooSmall               = errors.New("file too small for a safetensors header")
	ErrHeaderTooLarge               = errors.New("header length exceeds the 100 MB limit")
	ErrInvalidHeaderLength          = errors.New("header length runs past the end of the file")
	ErrInvalidHeader                = errors.New("header is not valid UTF-8")
	ErrInvalidHeaderDeserialization = errors.New("header is not a valid safetensors JSON header")
	ErrInvalidOffset                = errors.New("tensor offsets are not contiguous")
	ErrValidationOverflow           = errors.New("tensor size overflows")
	ErrMisalignedSlice              = errors.New("tensor bit size is not a whole number of bytes")
	ErrTensorInvalidInfo            = errors.New("tensor byte length does not match dtype and shape")
	ErrMetadataIncompleteBuffer     = errors.New("tensor data does not end at the end of the file")

	ErrLFSPointer     = errors.New("file is a Git LFS pointer, not the weights")
	ErrNotSafetensors = errors.New("file is not a safetensors file")
	ErrTruncated      = errors.New("file is truncated")
	ErrTrailingBytes  = errors.New("file has bytes after the last tensor")
	ErrDuplicateName  = errors.New("duplicate tensor name")
	ErrUnpaddedHeader = errors.New("header length is not a multiple of 8")

	ErrIndex = errors.New("sharded index is inconsistent")
	// The index cross-checks: each such Problem has Kind ErrIndex and one of
	// these as Also.
	ErrNotInShard     = errors.New("tensor listed in weight_map is absent from its shard")
	ErrUnlistedTensor = errors.New("tensor in a shard is not listed in weight_map")
	ErrWrongShard     = errors.New("tensor is in a different shard than weight_map says")
	ErrStrayShard     = errors.New("safetensors file beside the index is not named by it")
	ErrTotalSize      = errors.New("metadata.total_size disagrees with the shards")

	ErrUnsafePath    = errors.New("path escapes the checkpoint directory")
	ErrMissingShard  = errors.New("shard file is missing")
	ErrConfig        = errors.New("tensor shapes disagree with config.json")
	ErrNoWeights     = errors.New("no weights found")
	ErrFileChanged   = errors.New("file changed after its header was read")
	ErrFault         = errors.New("memory fault reading a mapped file (was it truncated while being read?)")
	ErrHeaderTooBig  = errors.New("header would exceed the 100 MB limit")
	ErrWriteMismatch = errors.New("tensor data length does not match its dtype and shape")

	// PyTorch files (torch.save, zip or legacy).
	ErrTorchFormat = errors.New("PyTorch file is malformed")
	ErrPickle      = errors.New("pickle names code or classes outside the allow-list")
	ErrUnsupported = errors.New("tensor type is not supported yet")
)

// Error is the one error type of this package: a category (one of the sentinels
// above) located in a file, optionally at a tensor and a byte offset, with a
// sentence that says what is wrong in words a person can act on.
type Error struct {
	Kind   error  // one of the sentinels; errors.Is matches it
	File   string // path of the file, "" when not about a file
	Tensor string // tensor name, "" when not about one tensor
	Offset int64  // byte offset in the file, -1 when unknown
	Detail string // what exactly is wrong
	Also   error  // optional second category (e.g. ErrTruncated beside ErrMetadataIncompleteBuffer)
	Global string // for ErrPickle: the global the pickle names, e.g. "posix.system"
}

func (e *Error) Error() string {
	msg := ""
	if e.File != "" {
		msg = e.File + ": "
	}
	if e.Tensor != "" {
		msg += fmt.Sprintf("tensor %q: ", e.Tensor)
	}
	if e.Detail != "" {
		msg += e.Detail
	} else {
		msg += e.Kind.Error()
	}
	if e.Offset >= 0 {
		msg += fmt.Sprintf(" (at byte %d)", e.Offset)
	}
	return msg
}

// Unwrap exposes both categories to errors.Is.
func (e *Error) Unwrap() []error {
	if e.Also != nil {
		return []error{e.Kind, e.Also}
	}
	return []error{e.Kind}
}

func newErr(kind error, file, tensor string, offset int64, format string, args ...any) *Error {
	return &Error{Kind: kind, File: file, Tensor: tensor, Offset: offset, Detail: fmt.Sprintf(format, args...)}
}

// Severity of a Problem.
type Severity string

const (
	SevError   Severity = "error"
	SevWarning Severity = "warning"
	SevInfo    Severity = "info"
)

// Problem is a format finding recorded while opening a checkpoint: the file (or
// index) is still described as far as it could be read.
type Problem struct {
	Severity Severity
	Err      *Error
}
