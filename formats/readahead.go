package formats

import (
	"fmt"
	"sync/atomic"
)

// ReadAhead is the hint a pread source gives the kernel about how the file
// will be read (posix_fadvise on Linux; no hint elsewhere). It matters only
// when the file is not in the page cache.
type ReadAhead int32

const (
	// ReadAheadNone gives no hint: the kernel's default read-ahead.
	ReadAheadNone ReadAhead = iota
	// ReadAheadSequential is POSIX_FADV_SEQUENTIAL: a larger read-ahead window.
	ReadAheadSequential
	// ReadAheadWillNeed is POSIX_FADV_WILLNEED over the whole file: read-ahead
	// of all of it starts at open.
	ReadAheadWillNeed
)

func (r ReadAhead) String() string {
	switch r {
	case ReadAheadSequential:
		return "sequential"
	case ReadAheadWillNeed:
		return "willneed"
	}
	return "none"
}

// ParseReadAhead accepts "none", "sequential" or "willneed".
func ParseReadAhead(s string) (ReadAhead, error) {
	for _, r := range []ReadAhead{ReadAheadNone, ReadAheadSequential, ReadAheadWillNeed} {
		if s == r.String() {
			return r, nil
		}
	}
	return ReadAheadNone, fmt.Errorf("unknown read-ahead hint %q (want none, sequential or willneed)", s)
}

// DefaultReadAhead is the hint chosen from the cold-cache measurements in
// docs/performance.md (COLD=1 bash bench/speed.sh): with it a scan of a 15 GB
// checkpoint not in the page cache took 8.2 s, against 14.0 s with no hint and
// 11.4 s with WILLNEED (medians of 3).
const DefaultReadAhead = ReadAheadSequential

var readAhead atomic.Int32

func init() { readAhead.Store(int32(DefaultReadAhead)) }

// SetReadAhead sets the hint every pread source opened afterwards gives (the
// benchmarks compare them), and returns the previous one.
func SetReadAhead(r ReadAhead) ReadAhead { return ReadAhead(readAhead.Swap(int32(r))) }

// CurrentReadAhead is the hint pread sources give.
func CurrentReadAhead() ReadAhead { return ReadAhead(readAhead.Load()) }
