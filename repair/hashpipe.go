package repair

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// The SHA-256 of every input file is computed while the copy runs, on other
// goroutines, so that hashing (about as costly as writing) overlaps with
// copying instead of adding to it:
//
//   - a file the copier reads in order (BAD's files, whose kept tensors are
//     copied) is hashed from the very chunks the copier reads: one read serves
//     both. The bytes the copier skips (tensors taken from GOOD) and the tail
//     are read by the hasher itself, in file order.
//   - the other files (GOOD's, and BAD's files from which nothing is kept) are
//     read from start to end by a second hashing goroutine, started first.
//
// Memory is a few chunks whatever the model's size: the copier takes chunks
// from a small pool, and a chunk returns to it once written and hashed.

// chunk is a buffer the copier reads into and the hasher may still be hashing.
type chunk struct {
	b    []byte
	refs atomic.Int32
	pool chan *chunk
}

// release drops one reference; the last returns the chunk to its pool.
func (c *chunk) release() {
	if c.refs.Add(-1) == 0 {
		c.pool <- c
	}
}

// hashJob is one piece of a fed input to hash, in file order: c.b[lo:hi], or
// (c == nil) the bytes [from, to) read from the file by the hasher.
type hashJob struct {
	in       *hashedInput
	c        *chunk
	lo, hi   int
	from, to int64
}

type hashPipe struct {
	chunkBytes int
	pool       chan *chunk
	jobs       chan hashJob
	stop       chan struct{}
	wg         sync.WaitGroup
	mu         sync.Mutex
	err        error
	closed     bool
}

// poolChunks is how many chunks circulate between the copier and the hasher.
const poolChunks = 4

func newHashPipe(chunkBytes int) *hashPipe {
	hp := &hashPipe{chunkBytes: chunkBytes, pool: make(chan *chunk, poolChunks),
		jobs: make(chan hashJob, 256), stop: make(chan struct{})}
	for i := 0; i < poolChunks; i++ {
		hp.pool <- &chunk{b: make([]byte, chunkBytes), pool: hp.pool}
	}
	hp.wg.Add(1)
	go hp.runFed()
	return hp
}

// get takes a chunk for the copier (holding one reference).
func (hp *hashPipe) get() *chunk {
	c := <-hp.pool
	c.refs.Store(1)
	return c
}

func (hp *hashPipe) fail(err error) {
	hp.mu.Lock()
	if hp.err == nil {
		hp.err = err
	}
	hp.mu.Unlock()
}

func (hp *hashPipe) failed() error {
	hp.mu.Lock()
	defer hp.mu.Unlock()
	return hp.err
}

// feed is called by the copier after reading c.b[:n] at off of a fed input:
// it schedules the hash of the bytes skipped since the last read, then of the
// new bytes of c.
func (hp *hashPipe) feed(in *hashedInput, c *chunk, off int64, n int) {
	if off > in.pos {
		hp.jobs <- hashJob{in: in, from: in.pos, to: off}
		in.pos = off
	}
	if end := off + int64(n); off <= in.pos && end > in.pos {
		c.refs.Add(1)
		hp.jobs <- hashJob{in: in, c: c, lo: int(in.pos - off), hi: n}
		in.pos = end
	}
}

// runFed hashes the fed inputs' jobs in order.
func (hp *hashPipe) runFed() {
	defer hp.wg.Done()
	var scratch []byte
	for j := range hp.jobs {
		if j.c != nil {
			if hp.failed() == nil {
				j.in.h.Write(j.c.b[j.lo:j.hi])
			}
			j.c.release()
			continue
		}
		if hp.failed() != nil {
			continue
		}
		if scratch == nil {
			scratch = make([]byte, hp.chunkBytes)
		}
		if err := hp.readHash(j.in, j.from, j.to, scratch); err != nil {
			hp.fail(err)
		}
	}
}

// readHash reads [from, to) of in and hashes it, stopping early on abort.
func (hp *hashPipe) readHash(in *hashedInput, from, to int64, buf []byte) error {
	for pos := from; pos < to; {
		select {
		case <-hp.stop:
			return errAborted
		default:
		}
		n := min(int64(len(buf)), to-pos)
		if _, err := in.src.ReadAt(buf[:n], pos); err != nil {
			return fmt.Errorf("hashing %s: %w", in.Path, err)
		}
		in.h.Write(buf[:n])
		pos += n
	}
	return nil
}

var errAborted = fmt.Errorf("aborted")

// hashAll hashes whole files on a goroutine of its own.
func (hp *hashPipe) hashAll(ins []*hashedInput) {
	if len(ins) == 0 {
		return
	}
	hp.wg.Add(1)
	go func() {
		defer hp.wg.Done()
		buf := make([]byte, hp.chunkBytes)
		for _, in := range ins {
			if err := hp.readHash(in, 0, in.src.Size(), buf); err != nil {
				hp.fail(err)
				return
			}
		}
	}()
}

// finish schedules the tails of the fed inputs, waits for every hash and
// returns the first error.
func (hp *hashPipe) finish(fed []*hashedInput) error {
	for _, in := range fed {
		if size := in.src.Size(); in.pos < size {
			hp.jobs <- hashJob{in: in, from: in.pos, to: size}
			in.pos = size
		}
	}
	hp.close()
	return hp.failed()
}

// abort stops the hashing and waits for its goroutines.
func (hp *hashPipe) abort() {
	if hp.closed {
		return
	}
	hp.fail(errAborted)
	close(hp.stop)
	hp.close()
}

// close ends the jobs and waits for every goroutine.
func (hp *hashPipe) close() {
	if hp.closed {
		return
	}
	hp.closed = true
	close(hp.jobs)
	hp.wg.Wait()
}
