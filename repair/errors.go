package repair

import (
	"errors"
	"fmt"

	"github.com/ckpt-tool/ckpt/formats"
)

// Sentinel errors of a repair. They are returned inside a *formats.Error (the
// project's one error type, which carries the file and tensor) or wrapped with
// %w; test with errors.Is.
var (
	// ErrOutputExists: OUT already exists and Force was not given.
	ErrOutputExists = errors.New("output already exists")
	// ErrOutputIsInput: OUT is, is inside, or (with Force) contains an input.
	ErrOutputIsInput = errors.New("output would overwrite an input")
	// ErrSameInput: BAD and GOOD are the same checkpoint.
	ErrSameInput = errors.New("BAD and GOOD are the same checkpoint")
	// ErrIncompatible: a tensor to be taken from GOOD differs in dtype or shape,
	// is missing from GOOD, or is cut short in GOOD's file.
	ErrIncompatible = errors.New("GOOD does not match BAD")
	// ErrGoodUnreadable: GOOD cannot be read at all (no file with a readable
	// header, or an unreadable index): no tensor can be taken from it.
	ErrGoodUnreadable = errors.New("GOOD cannot be read")
	// ErrLayoutUnreadable: BAD's layout cannot be kept because a file or the
	// index cannot be read.
	ErrLayoutUnreadable = errors.New("BAD's layout cannot be read")
	// ErrUnhealthy: the repaired checkpoint would still be unhealthy; nothing
	// was written to OUT.
	ErrUnhealthy = errors.New("the repaired checkpoint would still be unhealthy")
	// ErrInputChanged: an input changed while it was being read.
	ErrInputChanged = errors.New("an input changed during the repair")
	// ErrVerify: the written output, re-read, does not match what was planned.
	ErrVerify = errors.New("verification of the written output failed")
	// ErrNoSpace: the output's file system has too little free space.
	ErrNoSpace = errors.New("not enough free space for the output")
	// ErrPickleCode: a PyTorch file of BAD or GOOD names code in its pickle
	// (torch.load would run it); ckpt runs nothing and takes nothing from it.
	ErrPickleCode = errors.New("an input's pickle names code")
)

func errAt(kind error, file, tensor, format string, args ...any) *formats.Error {
	return &formats.Error{Kind: kind, File: file, Tensor: tensor, Offset: -1, Detail: fmt.Sprintf(format, args...)}
}
