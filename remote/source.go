package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ckpt-tool/ckpt/formats"
)

// The ranged Source: a formats.Source over one version of a remote object.
//
// Reads come in two kinds, told apart by size and order:
//
//   - Header reads (a format reader's few small reads: the first bytes to
//     sniff the format, the length prefix, the header; a zip's local headers)
//     are fetched exactly and kept in a few small segments, so the sniff's
//     bytes serve the length prefix and the header read fetches only what is
//     not held yet. A read that nothing held covers fetches at least minFetch
//     bytes (a zip's local header and the name after it come in one request);
//     one that continues the read before it fetches twice what the last such
//     fetch did, up to segMax (a scan's run of small tensors, a pickle read
//     64 KiB at a time). A segment is held from the moment its request is
//     sent: a read of bytes in flight waits for them, and a new fetch stops
//     where a held or pending one starts, so the scan's workers reading small
//     tensors side by side fetch each byte once.
//     Inspecting a safetensors file transfers its header and nothing else,
//     or minFetch bytes when its header is shorter.
//   - Streamed reads (the scan engine's reads of at least streamMin bytes,
//     each continuing where an earlier such read ended) are served from parts of
//     partSize bytes, aligned in the object, fetched by parallel range
//     requests, readAhead parts ahead of the reader. A big read that does not
//     continue another is fetched exactly, split into parallel requests of
//     partSize bytes.
//
// Every request is retried (see fetch) and reads only the version described
// at open: a changed object is an ErrFileChanged error, as a file replaced
// while being read.

const (
	minFetch  = 256       // the least a read that nothing held covers fetches (a zip local header and its name fit)
	streamMin = 128 << 10 // reads at least this big, continuing another, are streamed
	segMax    = 1 << 20   // the largest fetch kept as a segment
	maxSegs   = 64        // segments kept per open object
	segBytes  = 2 << 20   // bytes of segments kept per open object (the newest is kept whatever its size)
)

// Stats counts what remote reads sent and received since the process started.
type Stats struct {
	Bytes    int64 // object bytes received (response bodies of range requests)
	Requests int64 // requests sent: descriptions, listings and range requests, retries included
}

var bytesIn, requestsOut atomic.Int64

// Transferred returns the network traffic of every remote read so far. A
// command takes it before and after its work to say what the work cost.
func Transferred() Stats { return Stats{Bytes: bytesIn.Load(), Requests: requestsOut.Load()} }

// countRequest counts one request sent.
func countRequest() { requestsOut.Add(1) }

// errStalled cancels a request that made no progress for the idle timeout.
var errStalled = errors.New("no data arrived for too long")

type source struct {
	st     *store
	b      backend
	url    string
	info   objectInfo
	ctx    context.Context
	cancel context.CancelFunc
	sem    chan struct{} // bounds the parallel requests of this object

	mu    sync.Mutex
	segs  []*segment      // small ranges fetched or being fetched, oldest first
	parts map[int64]*part // streamed parts by index (offset / partSize)
	ends  [8]int64        // where recent big reads ended, to tell a stream
	endN  int
	// where recent reads of any size ended, and how much the last fetch of a
	// small read brought: small reads that continue each other fetch more
	smallEnds [8]int64
	smallN    int
	run       int // reads in a row that continued the one before
	lastFetch int64
	tick      int64
	// streaming: a big read continued another, so this object is being
	// scanned: every big read is served from parts from then on.
	streaming bool
	ahead     int64 // the highest part index started
}

// segment is a small range [off, off+n) fetched alone. Its data is set
// before done is closed; a failed fetch leaves data nil and removes the
// segment.
type segment struct {
	off  int64
	n    int64
	done chan struct{}
	data []byte
}

// covers reports whether the segment holds (or will hold) the byte at pos.
func (g *segment) covers(pos int64) bool { return pos >= g.off && pos < g.off+g.n }

// part is the bytes [from, to) of part index idx: to is the part's aligned
// end (or the object's), from its start or later (a stream that started
// inside it).
type part struct {
	from, to int64
	done     chan struct{}
	data     []byte
	err      error
	used     int64 // bytes handed out; a part fully handed out is dropped
	last     int64 // tick of the last use, for eviction
	refs     int   // readers waiting for it or copying from it
	dropped  bool  // no longer among the object's parts; its buffer is recycled when refs is 0
}

func newSource(st *store, b backend, url string, info objectInfo) *source {
	ctx, cancel := context.WithCancel(context.Background())
	s := &source{st: st, b: b, url: url, info: info, ctx: ctx, cancel: cancel,
		sem: make(chan struct{}, st.opts.readAhead+2), parts: map[int64]*part{}}
	for i := range s.ends {
		s.ends[i], s.smallEnds[i] = -1, -1
	}
	return s
}

func (s *source) Size() int64  { return s.info.size }
func (s *source) Path() string { return s.url }

// Stat describes the version of the object this source reads (not whatever
// the URL names now): its Sys() is the *formats.ObjectVersion.
func (s *source) Stat() (fs.FileInfo, error) {
	return &fileInfo{name: formats.BaseOf(s.url), size: s.info.size, version: s.info.version}, nil
}

// Close abandons the requests in flight and drops what is held.
func (s *source) Close() error {
	s.cancel()
	s.mu.Lock()
	s.segs, s.parts = nil, map[int64]*part{}
	s.mu.Unlock()
	return nil
}

// ReadAt reads len(b) bytes at off. Like a local file's, it never reads past
// Size and says so with an ErrTruncated error.
func (s *source) ReadAt(b []byte, off int64) (int, error) {
	size := s.info.size
	if off < 0 || off > size || int64(len(b)) > size-off {
		return 0, &formats.Error{Kind: formats.ErrTruncated, File: s.url, Offset: off,
			Detail: fmt.Sprintf("read of %d bytes at %d is past the end of the %d-byte file", len(b), off, size)}
	}
	if len(b) == 0 {
		return 0, nil
	}
	stream := false
	s.mu.Lock()
	if len(b) >= streamMin {
		// Only big reads count: a header read that follows the 8-byte
		// length prefix does not start a stream.
		s.streaming = s.streaming || continues(&s.ends, off)
		stream = s.streaming
		s.ends[s.endN%len(s.ends)] = off + int64(len(b))
		s.endN++
	}
	// A run of reads each continuing the one before (two at least: the
	// header read that follows the length prefix is not one).
	if continues(&s.smallEnds, off) {
		s.run++
	} else {
		s.run = 0
	}
	small := !stream && s.run >= 2
	s.smallEnds[s.smallN%len(s.smallEnds)] = off + int64(len(b))
	s.smallN++
	s.mu.Unlock()
	n := 0
	for n < len(b) {
		pos := off + int64(n)
		k, err := s.fromHeld(b[n:], pos, stream)
		if err != nil {
			return n, s.readErr(err, pos)
		}
		if k > 0 {
			n += k
			continue
		}
		if stream {
			s.mu.Lock()
			idx := pos / s.st.opts.partSize
			if old := s.parts[idx]; old != nil && old.from > pos {
				// The part holds what follows: fetch only the bytes before it.
				s.mu.Unlock()
				k, err := s.fetchDirect(b[n:n+int(min(old.from-pos, int64(len(b)-n)))], pos, false, false)
				if err != nil {
					return n, s.readErr(err, pos)
				}
				n += k
				continue
			}
			s.startPart(idx, pos, true)
			s.mu.Unlock()
			continue
		}
		if k, err = s.fetchDirect(b[n:], pos, n == 0 || small, small); err != nil {
			return n, s.readErr(err, pos)
		}
		n += k
	}
	return n, nil
}

// continues reports whether a read at off continues a recent read whose end
// is in ends.
func continues(ends *[8]int64, off int64) bool {
	for _, e := range ends {
		if e == off {
			return true
		}
	}
	return false
}

// readErr turns a failed fetch into what ReadAt returns: a changed object is
// formats.ErrFileChanged (and errChanged), a closed source its context error.
func (s *source) readErr(err error, pos int64) error {
	if errors.Is(err, errChanged) {
		return &formats.Error{Kind: formats.ErrFileChanged, Also: errChanged, File: s.url, Offset: pos,
			Detail: "the object changed while it was read (" + changedDetail(err) + "); inspect it again"}
	}
	return err
}

// changedDetail is what a backend said about a change, without the URL.
func changedDetail(err error) string {
	var re *Error
	if errors.As(err, &re) && re.Detail != "" {
		return re.Detail
	}
	return errChanged.Error()
}

// fromHeld copies into dst what a segment or a part holds at pos, waiting for
// a part in flight. It returns 0 when nothing held covers pos. A streamed
// read served from part i keeps parts i+1 … i+readAhead coming.
func (s *source) fromHeld(dst []byte, pos int64, stream bool) (int, error) {
	s.mu.Lock()
	s.tick++
	for i := len(s.segs) - 1; i >= 0; i-- {
		if g := s.segs[i]; g.covers(pos) {
			s.mu.Unlock()
			return g.copyTo(s.ctx, dst, pos)
		}
	}
	idx := pos / s.st.opts.partSize
	p := s.parts[idx]
	if p == nil || pos < p.from {
		s.mu.Unlock()
		return 0, nil
	}
	p.last = s.tick
	p.refs++ // its buffer stays ours until the copy below is done
	if stream {
		// A streamed reader is past the parts well behind it (the other
		// readers of a scan are close by): drop those finished, whatever
		// other reads took from them, and keep readAhead parts coming.
		for j, q := range s.parts {
			if j < idx-int64(s.st.opts.readAhead) && q.finished() {
				s.drop(j, q)
			}
		}
		// Parts up to s.ahead were started once: one missing now was used
		// up (or dropped) and is fetched again only if a reader needs it.
		for j := max(idx, s.ahead) + 1; j <= idx+int64(s.st.opts.readAhead) && j*s.st.opts.partSize < s.info.size; j++ {
			if s.parts[j] != nil {
				continue
			}
			if len(s.parts) >= s.st.opts.maxParts && !s.evict(idx) {
				break
			}
			s.startPart(j, j*s.st.opts.partSize, false)
		}
	}
	s.mu.Unlock()
	select {
	case <-p.done:
	case <-s.ctx.Done():
		s.mu.Lock()
		p.refs--
		s.mu.Unlock()
		return 0, s.ctx.Err()
	}
	k := 0
	if p.err == nil {
		k = copy(dst, p.data[pos-p.from:])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p.refs--
	if p.err != nil {
		s.drop(idx, p) // a later read tries again
		return 0, p.err
	}
	p.used += int64(k)
	if p.used >= p.to-p.from || p.dropped {
		s.drop(idx, p)
	}
	return k, nil
}

// trimSegs drops the oldest segments beyond maxSegs or segBytes (s.mu held).
// A reader waiting for a dropped segment still gets its bytes.
func (s *source) trimSegs() {
	held, keep := int64(0), 0
	for i := len(s.segs) - 1; i >= 0; i-- {
		held += s.segs[i].n
		if keep > 0 && (keep >= maxSegs || held > segBytes) {
			break
		}
		keep++
	}
	if keep < len(s.segs) {
		s.segs = append(s.segs[:0], s.segs[len(s.segs)-keep:]...)
	}
}

// copyTo copies into dst the segment's bytes at pos once they are fetched.
// It returns 0 when the fetch failed: the reader fetches them itself.
func (g *segment) copyTo(ctx context.Context, dst []byte, pos int64) (int, error) {
	select {
	case <-g.done:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if g.data == nil {
		return 0, nil
	}
	return copy(dst, g.data[pos-g.off:]), nil
}

// partBuffers recycles the buffers of parts: a fresh 8 MiB allocation costs
// page faults that cap a scan's throughput well below the network's.
var partBuffers sync.Pool

// drop removes part p (index idx) from the object's parts and recycles its
// buffer once no reader copies from it (s.mu held).
func (s *source) drop(idx int64, p *part) {
	if s.parts[idx] == p {
		delete(s.parts, idx)
	}
	p.dropped = true
	if p.refs == 0 && p.finished() && p.data != nil && int64(cap(p.data)) == s.st.opts.partSize {
		b := p.data[:cap(p.data)]
		p.data = nil
		partBuffers.Put(&b)
	}
}

// partBuffer returns a buffer of n bytes (n <= partSize).
func (s *source) partBuffer(n int64) []byte {
	if b, ok := partBuffers.Get().(*[]byte); ok && int64(cap(*b)) == s.st.opts.partSize {
		return (*b)[:n]
	}
	return make([]byte, n, s.st.opts.partSize)
}

// startPart starts fetching part idx from byte from (s.mu held). A part a
// reader waits for (demand) may take the place of the least recently used
// finished part when the object holds maxParts already.
func (s *source) startPart(idx, from int64, demand bool) {
	if old := s.parts[idx]; old != nil {
		return
	}
	if demand && len(s.parts) >= s.st.opts.maxParts {
		s.evict(math.MaxInt64)
	}
	to := min((idx+1)*s.st.opts.partSize, s.info.size)
	p := &part{from: from, to: to, done: make(chan struct{}), last: s.tick}
	s.parts[idx] = p
	s.ahead = max(s.ahead, idx)
	go func() {
		defer close(p.done)
		select {
		case s.sem <- struct{}{}:
		case <-s.ctx.Done():
			p.err = s.ctx.Err()
			return
		}
		defer func() { <-s.sem }()
		buf := s.partBuffer(p.to - p.from)
		if p.err = s.fetch(buf, p.from); p.err == nil {
			p.data = buf
		}
	}()
}

// finished reports whether the part's fetch is over.
func (p *part) finished() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// evict drops the least recently used finished part of an index below
// before (s.mu held), and reports whether there was one.
func (s *source) evict(before int64) bool {
	var victim int64 = -1
	var oldest int64
	for i, p := range s.parts {
		if !p.finished() || i >= before {
			continue
		}
		if victim < 0 || p.last < oldest {
			victim, oldest = i, p.last
		}
	}
	if victim >= 0 {
		s.drop(victim, s.parts[victim])
	}
	return victim >= 0
}

// fetchDirect fetches the bytes at pos for a read that nothing held covers
// (whole: the read's start; or the rest of one whose start was held): a small
// read at least minFetch bytes when whole, exactly otherwise, up to where a
// held or pending segment starts, kept as a segment; a big one straight into
// dst, in parallel requests of partSize bytes. It returns 0 bytes when
// another read's fetch came to cover pos meanwhile (the caller reads it from
// there).
func (s *source) fetchDirect(dst []byte, pos int64, whole, sequential bool) (int, error) {
	if len(dst) <= segMax {
		want := int64(len(dst))
		s.mu.Lock()
		for _, g := range s.segs {
			if g.covers(pos) {
				s.mu.Unlock()
				return 0, nil
			}
		}
		if whole {
			want = max(want, minFetch)
			if sequential {
				// Small reads one after another (a scan's small tensors,
				// a pickle read 64 KiB at a time): fetch twice as much as
				// last time, up to segMax, and serve the next ones from it.
				want = max(want, min(2*s.lastFetch, segMax))
			}
			s.lastFetch = want
			want = min(want, s.info.size-pos)
		}
		// What another segment holds or brings is not fetched again.
		for _, g := range s.segs {
			if g.off > pos && g.off < pos+want {
				want = g.off - pos
			}
		}
		g := &segment{off: pos, n: want, done: make(chan struct{})}
		s.segs = append(s.segs, g)
		s.trimSegs()
		s.mu.Unlock()
		buf := make([]byte, want)
		err := s.fetch(buf, pos)
		s.mu.Lock()
		if err == nil {
			g.data = buf
		} else if i := slices.Index(s.segs, g); i >= 0 {
			s.segs = slices.Delete(s.segs, i, i+1)
		}
		s.mu.Unlock()
		close(g.done)
		if err != nil {
			return 0, err
		}
		return copy(dst, buf), nil
	}
	ps := int(s.st.opts.partSize)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for lo := 0; lo < len(dst); lo += ps {
		piece := dst[lo:min(lo+ps, len(dst))]
		at := pos + int64(lo)
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case s.sem <- struct{}{}:
			case <-s.ctx.Done():
				return
			}
			defer func() { <-s.sem }()
			if err := s.fetch(piece, at); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first == nil && s.ctx.Err() != nil {
		first = s.ctx.Err()
	}
	if first != nil {
		return 0, first
	}
	return len(dst), nil
}

// maxTries bounds the requests of one fetch however much each makes progress.
const maxTries = 20

// fetch fills dst with the bytes at off, one range request at a time: a
// request that fails or stops early is retried for the bytes still missing
// after a jittered exponential wait. Attempts that bring no byte count
// against the store's limit; every request has the idle timeout.
func (s *source) fetch(dst []byte, off int64) error {
	got, failures := 0, 0
	for try := 1; ; try++ {
		k, err := s.fetchOnce(dst[got:], off+int64(got))
		got += k
		if got == len(dst) {
			return nil
		}
		if err == nil {
			err = &Error{URL: s.url, Op: "GET", Kind: errRetryable, Err: io.ErrUnexpectedEOF,
				Detail: fmt.Sprintf("the response ended after %d of %d bytes", k, len(dst)-got+k)}
		}
		if s.ctx.Err() != nil {
			return s.ctx.Err()
		}
		if k == 0 {
			failures++
		}
		if !errors.Is(err, errRetryable) || failures >= s.st.opts.attempts || try >= maxTries {
			if errors.Is(err, errRetryable) {
				return gaveUp(err, try)
			}
			return err
		}
		if err := wait(s.ctx, s.st.opts, failures); err != nil {
			return err
		}
	}
}

// fetchOnce sends one range request for dst and reads its body, returning
// the bytes read. A request that makes no progress for the idle timeout is
// cancelled and its error is retryable.
func (s *source) fetchOnce(dst []byte, off int64) (int, error) {
	ctx, cancel := context.WithCancelCause(s.ctx)
	defer cancel(nil)
	idle := s.st.opts.idleTimeout
	timer := time.AfterFunc(idle, func() { cancel(errStalled) })
	defer timer.Stop()
	stalled := func(err error) error {
		if context.Cause(ctx) == errStalled {
			return &Error{URL: s.url, Op: "GET", Kind: errRetryable, Err: errStalled,
				Detail: fmt.Sprintf("no data arrived for %s", idle)}
		}
		return err
	}
	countRequest()
	rc, err := s.b.getRange(ctx, s.url, off, int64(len(dst)), s.info)
	if err != nil {
		return 0, stalled(err)
	}
	defer rc.Close()
	n := 0
	for n < len(dst) {
		k, err := rc.Read(dst[n:])
		n += k
		bytesIn.Add(int64(k))
		if k > 0 {
			timer.Reset(idle)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			if s.ctx.Err() != nil {
				return n, s.ctx.Err()
			}
			return n, stalled(transportError(s.url, "GET", err))
		}
	}
	return n, nil
}
