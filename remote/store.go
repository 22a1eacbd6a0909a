package remote

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ckpt-tool/ckpt/formats"
)

// store is the formats.FS of one URL scheme over a backend: directories
// (a path ending in "/", or one the backend lists entries under), listing,
// and opening an object as a ranged Source. The backend is made on first use,
// so that credentials and the environment are read only when a URL of its
// scheme is.
type store struct {
	scheme string
	open   func() (backend, error)
	opts   options

	once sync.Once
	b    backend
	err  error

	// What recent HEADs said (an object's description, or that there is
	// none), kept for headTTL: opening a checkpoint asks whether a file
	// exists, then opens it, then a scan opens it again. A version that
	// changes meanwhile is still caught: every read is conditional on it.
	headMu sync.Mutex
	heads  map[string]headResult
}

type headResult struct {
	info objectInfo
	err  error // nil, or an error for which errors.Is(err, fs.ErrNotExist)
	at   time.Time
}

const (
	headTTL  = 5 * time.Second
	maxHeads = 4096
)

// describe is the backend's head of p, retried, through the cache of recent
// answers.
func (s *store) describe(ctx context.Context, b backend, p string) (objectInfo, error) {
	s.headMu.Lock()
	if h, ok := s.heads[p]; ok && time.Since(h.at) < headTTL {
		s.headMu.Unlock()
		return h.info, h.err
	}
	s.headMu.Unlock()
	info, err := retry(ctx, s.opts, func(ctx context.Context) (objectInfo, error) { return b.head(ctx, p) })
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		s.headMu.Lock()
		if s.heads == nil || len(s.heads) >= maxHeads {
			s.heads = map[string]headResult{}
		}
		s.heads[p] = headResult{info: info, err: err, at: time.Now()}
		s.headMu.Unlock()
	}
	return info, err
}

// options tune a store's requests; tests make them small.
type options struct {
	partSize    int64         // bytes of one parallel range request of a streamed read
	readAhead   int           // parts fetched ahead of a sequential reader
	maxParts    int           // parts held in memory per open object
	attempts    int           // tries of one request before giving up
	backoff     time.Duration // the first retry's wait; doubled each time, with jitter
	maxBackoff  time.Duration
	idleTimeout time.Duration // a request that makes no progress for this long is abandoned (and retried)
}

func defaultOptions() options {
	return options{
		partSize:    8 << 20,
		readAhead:   4,
		maxParts:    12,
		attempts:    5,
		backoff:     200 * time.Millisecond,
		maxBackoff:  5 * time.Second,
		idleTimeout: 30 * time.Second,
	}
}

func newStore(scheme string, open func() (backend, error), o options) *store {
	return &store{scheme: scheme, open: open, opts: o}
}

// backend returns the store's backend, making it on first use.
func (s *store) backend() (backend, error) {
	s.once.Do(func() { s.b, s.err = s.open() })
	return s.b, s.err
}

// backendFor is the store's backend, once p is a URL it can read.
func (s *store) backendFor(p string) (backend, error) {
	b, err := s.backend()
	if err != nil {
		return nil, err
	}
	if err := b.check(p); err != nil {
		return nil, err
	}
	return b, nil
}

// Stat describes the object or directory at p. A path ending in "/" is a
// directory without a request; otherwise the object is described and, when
// there is none, a directory is one the backend lists entries under.
func (s *store) Stat(p string) (fs.FileInfo, error) {
	b, err := s.backendFor(p)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(p, "/") {
		return &fileInfo{name: formats.BaseOf(p), dir: true}, nil
	}
	ctx := context.Background()
	info, err := s.describe(ctx, b, p)
	if err == nil {
		return &fileInfo{name: formats.BaseOf(p), size: info.size, version: info.version}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	entries, lerr := s.readDir(ctx, b, p+"/")
	if lerr == nil && len(entries) > 0 {
		return &fileInfo{name: formats.BaseOf(p), dir: true}, nil
	}
	return nil, err
}

// ReadDir lists the entries directly under the directory p, sorted by name.
func (s *store) ReadDir(p string) ([]fs.DirEntry, error) {
	b, err := s.backendFor(p)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return s.readDir(context.Background(), b, p)
}

func (s *store) readDir(ctx context.Context, b backend, dir string) ([]fs.DirEntry, error) {
	entries, err := retry(ctx, s.opts, func(ctx context.Context) ([]fs.DirEntry, error) { return b.list(ctx, dir) })
	if err != nil {
		return nil, err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	return entries, nil
}

// Open describes the object at p and returns a Source reading that version
// of it with range requests. mode is ignored: nothing remote is mapped.
func (s *store) Open(p string, _ formats.SourceMode) (formats.Source, error) {
	b, err := s.backendFor(p)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(p, "/") {
		return nil, &formats.Error{Kind: formats.ErrSpecialFile, File: p, Offset: -1, Detail: "is a directory, not a file"}
	}
	info, err := s.describe(context.Background(), b, p)
	if err != nil {
		return nil, err
	}
	return newSource(s, b, p, info), nil
}

// retry calls fn until it succeeds, fails for good, or the attempts run out,
// waiting an exponentially growing, jittered time between attempts. Every
// attempt gets its own deadline (idleTimeout), so nothing waits for ever.
func retry[T any](ctx context.Context, o options, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, o.idleTimeout)
		v, err := fn(actx)
		timedOut := actx.Err() != nil && ctx.Err() == nil
		cancel()
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, errRetryable) && !timedOut || attempt+1 >= o.attempts {
			return zero, gaveUp(err, attempt+1)
		}
		if werr := wait(ctx, o, attempt); werr != nil {
			return zero, err
		}
	}
}

// gaveUp says how many attempts a retryable failure got.
func gaveUp(err error, attempts int) error {
	if attempts > 1 {
		return fmt.Errorf("%w (gave up after %d attempts)", err, attempts)
	}
	return err
}

// wait sleeps before retry number attempt+1: backoff·2^attempt, capped,
// with "equal jitter" (half fixed, half random) so clients that failed
// together do not retry together. It returns early with ctx's error.
func wait(ctx context.Context, o options, attempt int) error {
	d := o.backoff << min(attempt, 20)
	if d > o.maxBackoff || d <= 0 {
		d = o.maxBackoff
	}
	d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fileInfo is an object's or directory's fs.FileInfo; an object's Sys() is
// its *formats.ObjectVersion.
type fileInfo struct {
	name    string
	size    int64
	dir     bool
	version formats.ObjectVersion
}

func (f *fileInfo) Name() string { return f.name }
func (f *fileInfo) Size() int64  { return f.size }
func (f *fileInfo) Mode() fs.FileMode {
	if f.dir {
		return fs.ModeDir | 0o555
	}
	return 0o444
}
func (f *fileInfo) ModTime() time.Time { return f.version.LastModified }
func (f *fileInfo) IsDir() bool        { return f.dir }
func (f *fileInfo) Sys() any {
	if f.dir {
		return nil
	}
	v := f.version
	return &v
}

// dirEntry is one entry of a listing.
type dirEntry struct{ info *fileInfo }

func (d dirEntry) Name() string               { return d.info.name }
func (d dirEntry) IsDir() bool                { return d.info.dir }
func (d dirEntry) Type() fs.FileMode          { return d.info.Mode().Type() }
func (d dirEntry) Info() (fs.FileInfo, error) { return d.info, nil }

// fileEntry and dirEntryOf make listing entries.
func fileEntry(name string, size int64, v formats.ObjectVersion) fs.DirEntry {
	return dirEntry{&fileInfo{name: name, size: size, version: v}}
}

func dirEntryOf(name string) fs.DirEntry { return dirEntry{&fileInfo{name: name, dir: true}} }
