package remote

import (
	"context"
	"io"
	"io/fs"

	"github.com/ckpt-tool/ckpt/formats"
)

// objectInfo describes one version of a remote object.
type objectInfo struct {
	size    int64
	version formats.ObjectVersion
	// pin is what a backend reads that version's bytes through, when the
	// version alone cannot say it (the Hub: the commit a branch pointed at
	// when the object was described). Empty for the others.
	pin string
}

// backend is one kind of remote store (S3, HTTP, the Hub): how to describe,
// list and read byte ranges of its objects. The store built over it (formats.FS)
// adds what every backend shares: directories, parallel range reads, retries,
// change detection and the count of bytes transferred.
type backend interface {
	// check says whether url is well formed for this backend (an error
	// wrapping ErrBadURL when not), without a request.
	check(url string) error
	// head describes the object at url. A missing object is an error for which
	// errors.Is(err, fs.ErrNotExist).
	head(ctx context.Context, url string) (objectInfo, error)
	// list returns the entries directly under the directory url (files and
	// sub-directories, as fs.DirEntry), sorted by name; an error wrapping
	// formats.ErrNotListable when the backend cannot list.
	list(ctx context.Context, url string) ([]fs.DirEntry, error)
	// getRange returns the bytes [off, off+n) of the version of url that info
	// describes. When the object is no longer that version, the error wraps
	// errChanged; a failure worth retrying (5xx, a reset connection, a short
	// body) wraps errRetryable.
	getRange(ctx context.Context, url string, off, n int64, info objectInfo) (io.ReadCloser, error)
}
