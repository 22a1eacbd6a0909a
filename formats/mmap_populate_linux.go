//go:build linux

package formats

import "golang.org/x/sys/unix"

// mapPopulate prefaults a window's pages in the mmap call itself.
const mapPopulate = unix.MAP_POPULATE
