//go:build unix

package hostile

import (
	"os"
	"syscall"
)

// makeSpecial replaces path by a FIFO without a writer (fifo) or a symlink to
// /dev/zero: files that block or never end when read the usual way.
func makeSpecial(path string, fifo bool) error {
	if err := os.RemoveAll(path); err != nil {
		return err
	}
	if fifo {
		return syscall.Mkfifo(path, 0o644)
	}
	return os.Symlink("/dev/zero", path)
}
