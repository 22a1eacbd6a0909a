package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ckpt-tool/ckpt/formats"
)

// memBackend serves one object from memory, counting requests and bytes,
// with faults a test switches on.
type memBackend struct {
	mu       sync.Mutex
	data     []byte
	version  formats.ObjectVersion
	gets     atomic.Int64
	sent     atomic.Int64
	failNext atomic.Int64 // the next n range requests fail with a retryable error
	cutNext  atomic.Int64 // the next n bodies stop after half their bytes
	stall    atomic.Int64 // the next n bodies send nothing until cancelled
	fatal    error        // every range request fails with this
}

func newMem(size int) *memBackend {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return &memBackend{data: b, version: formats.ObjectVersion{ETag: `"v1"`}}
}

func (m *memBackend) check(string) error { return nil }

func (m *memBackend) head(context.Context, string) (objectInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return objectInfo{size: int64(len(m.data)), version: m.version}, nil
}

func (m *memBackend) list(_ context.Context, u string) ([]fs.DirEntry, error) {
	return nil, &Error{URL: u, Kind: formats.ErrNotListable}
}

func (m *memBackend) getRange(ctx context.Context, u string, off, n int64, info objectInfo) (io.ReadCloser, error) {
	m.gets.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.fatal != nil:
		return nil, m.fatal
	case info.version != m.version:
		return nil, &Error{URL: u, Kind: errChanged, Detail: "its ETag changed"}
	case m.failNext.Add(-1) >= 0:
		return nil, &Error{URL: u, Kind: errRetryable, Detail: "HTTP 503"}
	case off < 0 || off+n > int64(len(m.data)):
		return nil, fmt.Errorf("range %d+%d outside the object", off, n)
	}
	body := m.data[off : off+n]
	if m.stall.Add(-1) >= 0 {
		return &stallBody{ctx: ctx}, nil
	}
	if m.cutNext.Add(-1) >= 0 {
		return io.NopCloser(&errAfter{r: bytes.NewReader(body[:n/2]), m: m}), nil
	}
	return io.NopCloser(&countReader{r: bytes.NewReader(body), m: m}), nil
}

type countReader struct {
	r io.Reader
	m *memBackend
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.m.sent.Add(int64(n))
	return n, err
}

// errAfter ends its body with a reset connection.
type errAfter struct {
	r io.Reader
	m *memBackend
}

func (e *errAfter) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.m.sent.Add(int64(n))
	if err == io.EOF {
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

// stallBody sends nothing until its request is cancelled.
type stallBody struct{ ctx context.Context }

func (s *stallBody) Read([]byte) (int, error) {
	<-s.ctx.Done()
	return 0, s.ctx.Err()
}
func (s *stallBody) Close() error { return nil }

func testOptions() options {
	o := defaultOptions()
	o.partSize = 256 << 10
	o.backoff = time.Millisecond
	o.maxBackoff = 5 * time.Millisecond
	o.idleTimeout = 200 * time.Millisecond
	return o
}

func openMem(t *testing.T, m *memBackend, o options) formats.Source {
	t.Helper()
	st := newStore("mem", func() (backend, error) { return m, nil }, o)
	src, err := st.Open("mem://bucket/object", formats.Pread)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// Every read, of any size and order, streamed or not, from several
// goroutines at once, gives the object's bytes.
func TestSourceReadsMatchTheObject(t *testing.T) {
	m := newMem(3<<20 + 12345)
	src := openMem(t, m, testOptions())
	r := rand.New(rand.NewPCG(3, 4))
	type read struct{ off, n int64 }
	var reads []read
	for range 200 {
		off := r.Int64N(int64(len(m.data)))
		n := min(r.Int64N(600<<10)+1, int64(len(m.data))-off)
		reads = append(reads, read{off, n})
	}
	// Sequential runs, as the scan engine's workers read.
	for w := int64(0); w < 2; w++ {
		for off := w * (1 << 20); off+(256<<10) <= int64(len(m.data)); off += 256 << 10 {
			reads = append(reads, read{off, 256 << 10})
		}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < len(reads); i += 4 {
				rd := reads[i]
				buf := make([]byte, rd.n)
				if n, err := src.ReadAt(buf, rd.off); err != nil || int64(n) != rd.n {
					t.Errorf("ReadAt(%d, %d) = %d, %v", rd.n, rd.off, n, err)
					return
				}
				if !bytes.Equal(buf, m.data[rd.off:rd.off+rd.n]) {
					t.Errorf("ReadAt(%d, %d): wrong bytes", rd.n, rd.off)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// A format reader's header reads (sniff, length, header) fetch the header
// and nothing more, in two requests.
func TestSourceHeaderReadsFetchTheHeader(t *testing.T) {
	for _, hlen := range []int64{248, 3000, 70000, 2 << 20} {
		m := newMem(8 << 20)
		src := openMem(t, m, testOptions())
		for _, rd := range [][2]int64{{32, 0}, {8, 0}, {hlen, 8}} {
			if _, err := src.ReadAt(make([]byte, rd[0]), rd[1]); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := m.sent.Load(), 8+hlen; got != want {
			t.Errorf("header of %d bytes: %d bytes fetched, want %d", hlen, got, want)
		}
		if want := int64(2) + (8+hlen-minFetch-1)/testOptions().partSize; m.gets.Load() > want {
			t.Errorf("header of %d bytes: %d requests, want at most %d", hlen, m.gets.Load(), want)
		}
	}
}

// A scan's sequential reads are served from parts fetched ahead: each byte
// fetched once, in few requests.
func TestSourceStreamsSequentialReads(t *testing.T) {
	m := newMem(4 << 20)
	o := testOptions()
	src := openMem(t, m, o)
	buf := make([]byte, 128<<10)
	for off := int64(0); off < int64(len(m.data)); off += int64(len(buf)) {
		if _, err := src.ReadAt(buf, off); err != nil {
			t.Fatal(err)
		}
	}
	if got := m.sent.Load(); got != int64(len(m.data)) {
		t.Errorf("fetched %d bytes of a %d-byte object", got, len(m.data))
	}
	if parts := int64(len(m.data)) / o.partSize; m.gets.Load() > parts+2 {
		t.Errorf("%d requests for %d parts", m.gets.Load(), parts)
	}
}

func TestSourceNeverReadsPastTheEnd(t *testing.T) {
	m := newMem(1000)
	src := openMem(t, m, testOptions())
	for _, rd := range [][2]int64{{1, 1000}, {2, 999}, {1, -1}, {1001, 0}} {
		_, err := src.ReadAt(make([]byte, rd[0]), rd[1])
		if !errors.Is(err, formats.ErrTruncated) {
			t.Errorf("ReadAt(%d bytes at %d): %v, want ErrTruncated", rd[0], rd[1], err)
		}
	}
	if m.gets.Load() != 0 {
		t.Errorf("%d requests for reads past the end", m.gets.Load())
	}
}

func TestSourceRetries(t *testing.T) {
	for _, c := range []struct {
		name  string
		fault func(*memBackend)
	}{
		{"5xx", func(m *memBackend) { m.failNext.Store(3) }},
		{"cut bodies", func(m *memBackend) { m.cutNext.Store(3) }},
		{"stalled body", func(m *memBackend) { m.stall.Store(1) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newMem(2 << 20)
			src := openMem(t, m, testOptions())
			c.fault(m)
			buf := make([]byte, len(m.data))
			start := time.Now()
			if _, err := src.ReadAt(buf, 0); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf, m.data) {
				t.Fatal("wrong bytes after retries")
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
	t.Run("gives up", func(t *testing.T) {
		m := newMem(4096)
		o := testOptions()
		src := openMem(t, m, o)
		m.failNext.Store(1 << 30)
		_, err := src.ReadAt(make([]byte, 100), 0)
		if !errors.Is(err, errRetryable) || m.gets.Load() != int64(o.attempts) {
			t.Errorf("err %v after %d requests; want a retryable error after %d", err, m.gets.Load(), o.attempts)
		}
	})
	t.Run("no retry for a final error", func(t *testing.T) {
		m := newMem(4096)
		src := openMem(t, m, testOptions())
		m.fatal = &Error{URL: "mem://x", Kind: ErrAccessDenied}
		_, err := src.ReadAt(make([]byte, 100), 0)
		if !errors.Is(err, ErrAccessDenied) || m.gets.Load() != 1 {
			t.Errorf("err %v after %d requests; want access denied after 1", err, m.gets.Load())
		}
	})
}

// An object that changes between reads is an ErrFileChanged error (and
// errChanged), never bytes of two versions.
func TestSourceChangedObject(t *testing.T) {
	m := newMem(1 << 20)
	src := openMem(t, m, testOptions())
	if _, err := src.ReadAt(make([]byte, 10), 0); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	m.version.ETag = `"v2"`
	m.mu.Unlock()
	_, err := src.ReadAt(make([]byte, 300<<10), 500<<10)
	if !errors.Is(err, formats.ErrFileChanged) || !errors.Is(err, errChanged) {
		t.Fatalf("err %v, want ErrFileChanged", err)
	}
	st, _ := src.Stat()
	if v, ok := st.Sys().(*formats.ObjectVersion); !ok || v.ETag != `"v1"` {
		t.Errorf("Stat().Sys() = %#v, want the version read at open", st.Sys())
	}
}

// Close abandons a read waiting on a stalled request.
func TestSourceCloseStopsReads(t *testing.T) {
	m := newMem(1 << 20)
	o := testOptions()
	o.idleTimeout = time.Hour
	src := openMem(t, m, o)
	m.stall.Store(1 << 30)
	done := make(chan error, 1)
	go func() {
		_, err := src.ReadAt(make([]byte, 100), 0)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	src.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a read of a closed source succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop the read")
	}
}

func TestTransferredCounts(t *testing.T) {
	before := Transferred()
	m := newMem(5000)
	src := openMem(t, m, testOptions())
	if _, err := src.ReadAt(make([]byte, 3000), 1000); err != nil {
		t.Fatal(err)
	}
	now := Transferred()
	if now.Bytes-before.Bytes < 3000 || now.Requests-before.Requests < 1 {
		t.Errorf("Transferred went from %+v to %+v after reading 3000 bytes", before, now)
	}
}

// Small reads one after another (a scan's run of small tensors) are served
// by fetches that double, not by a request each.
func TestSourceSmallSequentialReadsGrow(t *testing.T) {
	m := newMem(1 << 20)
	src := openMem(t, m, testOptions())
	const n, size = 400, 100
	for i := range n {
		b := make([]byte, size)
		if _, err := src.ReadAt(b, int64(i*size)); err != nil || !bytes.Equal(b, m.data[i*size:(i+1)*size]) {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	if m.gets.Load() > 10 {
		t.Errorf("%d requests for %d small sequential reads", m.gets.Load(), n)
	}
	if m.sent.Load() > 2*n*size+minFetch {
		t.Errorf("fetched %d bytes for %d", m.sent.Load(), n*size)
	}
}

// Small reads from several goroutines side by side (a scan's workers on the
// small tensors of a small file) fetch each byte once: a read of bytes in
// flight waits for them, and a fetch stops where another starts.
func TestSourceSmallReadsFromWorkersFetchOnce(t *testing.T) {
	for round := range 20 {
		m := newMem(40 << 10)
		src := openMem(t, m, testOptions())
		// The header reads, then tensors of 300 to 3000 bytes handed out
		// in order to 4 workers.
		for _, rd := range [][2]int64{{32, 0}, {8, 0}, {2000, 8}} {
			if _, err := src.ReadAt(make([]byte, rd[0]), rd[1]); err != nil {
				t.Fatal(err)
			}
		}
		r := rand.New(rand.NewPCG(uint64(round), 9))
		type read struct{ off, n int64 }
		next := make(chan read)
		go func() {
			for off := int64(2008); off < int64(len(m.data)); {
				n := min(300+r.Int64N(2700), int64(len(m.data))-off)
				next <- read{off, n}
				off += n
			}
			close(next)
		}()
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for rd := range next {
					b := make([]byte, rd.n)
					if _, err := src.ReadAt(b, rd.off); err != nil || !bytes.Equal(b, m.data[rd.off:rd.off+rd.n]) {
						t.Errorf("ReadAt(%d, %d): %v", rd.n, rd.off, err)
					}
				}
			}()
		}
		wg.Wait()
		if got := m.sent.Load(); got != int64(len(m.data)) {
			t.Errorf("round %d: fetched %d bytes of a %d-byte object in %d requests", round, got, len(m.data), m.gets.Load())
		}
	}
}
