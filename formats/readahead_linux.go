//go:build linux

package formats

import (
	"os"

	"golang.org/x/sys/unix"
)

// adviseReadAhead gives the kernel the read-ahead hint r for the whole of f.
// A failed hint changes nothing but speed, so its error is ignored.
func adviseReadAhead(f *os.File, r ReadAhead) {
	switch r {
	case ReadAheadSequential:
		_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_SEQUENTIAL)
	case ReadAheadWillNeed:
		_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_WILLNEED)
	}
}
