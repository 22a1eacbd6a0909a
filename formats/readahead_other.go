//go:build !linux

package formats

import "os"

// adviseReadAhead: no posix_fadvise here; the kernel's default read-ahead.
func adviseReadAhead(*os.File, ReadAhead) {}
