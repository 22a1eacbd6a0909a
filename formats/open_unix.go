//go:build unix

package formats

import (
	"os"
	"syscall"
)

// openNonblock makes open() return at once on a FIFO without a writer (or a
// device that would wait) instead of blocking.
const openNonblock = syscall.O_NONBLOCK

// clearNonblock puts a regular file back into blocking mode (Linux ignores
// O_NONBLOCK on regular files, other systems may not).
func clearNonblock(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.SetNonblock(int(fd), false) }); err != nil {
		return err
	}
	return serr
}
