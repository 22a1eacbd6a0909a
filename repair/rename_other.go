//go:build !linux

package repair

import (
	"io/fs"
	"os"
)

// renameNoReplace renames src to dst, failing with an error that matches
// fs.ErrExist when dst exists (checked first: not atomic on this system).
func renameNoReplace(src, dst string) error { return renameCheckFirst(src, dst) }

// renameExchange is not available here: the caller renames in two steps.
func renameExchange(src, dst string) error { return errUnsupported }

func renameCheckFirst(src, dst string) error {
	if _, err := os.Lstat(dst); err == nil {
		return &os.LinkError{Op: "rename", Old: src, New: dst, Err: fs.ErrExist}
	}
	return os.Rename(src, dst)
}
