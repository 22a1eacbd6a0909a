package synth

import (
	"path/filepath"
	"runtime"
	"sync"
)

// writeSingle writes one plain checkpoint (no noise streams) like writeVariants,
// but generates chunks on every CPU while one goroutine writes them in order.
// The bytes are identical to writeVariants' (each chunk has its own seed).
func writeSingle(o Options, l layout, dir string, gain float64, overwrite bool) error {
	workers := runtime.GOMAXPROCS(0)
	size := o.DType.Size()
	pool := sync.Pool{New: func() any { return make([]byte, chunkElems*8) }}
	type job struct {
		name string
		c, m int
		out  chan []byte
	}
	for s, specs := range l.specs {
		f, err := createPending(filepath.Join(dir, l.files[s]), specs, overwrite)
		if err != nil {
			return err
		}
		jobs := make(chan job)
		queue := make(chan job, 2*workers)
		done := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				vals := make([]float64, chunkElems)
				for j := range jobs {
					x := vals[:j.m]
					kind := kindOf(j.name)
					if kind.std == 0 {
						for i := range x {
							x[i] = kind.mean
						}
					} else {
						fillNormal(x, streamSeed(o.Seed, j.name, 0, j.c), kind.mean, kind.std)
					}
					if gain != 1 {
						for i := range x {
							x[i] *= gain
						}
					}
					buf := pool.Get().([]byte)[:j.m*size]
					encodeChunk(o.DType, x, buf)
					j.out <- buf
				}
			}()
		}
		go func() { // producer: chunks in write order
			defer close(queue)
			defer close(jobs)
			for _, spec := range f.w.Order() {
				n, _ := spec.ByteLen()
				numel := int(n) / size
				for c := 0; c*chunkElems < numel; c++ {
					j := job{name: spec.Name, c: c, m: min(chunkElems, numel-c*chunkElems), out: make(chan []byte, 1)}
					select {
					case queue <- j:
					case <-done:
						return
					}
					select {
					case jobs <- j:
					case <-done:
						return
					}
				}
			}
		}()
		var werr error
		for j := range queue {
			if werr != nil {
				continue // its job may never have reached a worker
			}
			buf := <-j.out
			if _, err := f.w.Write(buf); err != nil {
				werr = err
				close(done)
			}
			pool.Put(buf[:cap(buf)])
		}
		wg.Wait()
		if werr != nil {
			f.abort()
			return werr
		}
		if err := f.commit(); err != nil {
			return err
		}
	}
	return nil
}
