package inspect

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// benchArch is Qwen2-shaped, about 300 MB in BF16: large enough to leave the
// caches, small enough to generate in a benchmark. Set CKPT_BENCH_ARCH to a
// synth architecture name (qwen2-0.5b: 988 MB) to measure on that instead.
var benchArch = synth.Arch{Name: "bench", VocabSize: 32000, Hidden: 1024, Intermediate: 2816, Layers: 12, Heads: 16, KVHeads: 4}

// benchArchFromEnv is benchArch, or the synth architecture CKPT_BENCH_ARCH names.
func benchArchFromEnv(b *testing.B) synth.Arch {
	name := os.Getenv("CKPT_BENCH_ARCH")
	if name == "" {
		return benchArch
	}
	a, err := synth.ArchByName(name)
	if err != nil {
		b.Fatal(err)
	}
	return a
}

// BenchmarkScan scans a page-cached BF16 checkpoint with every CPU, through
// each byte source, beside the read limit: pread of every byte into an 8 MiB
// buffer per worker with nothing computed (the program the scan is measured
// against). The ratio of the two is the cost of the statistics.
func BenchmarkScan(b *testing.B) {
	arch := benchArchFromEnv(b)
	dir := b.TempDir()
	if err := synth.WriteCheckpoint(dir, synth.Options{Arch: arch, DType: formats.BF16, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	c, err := formats.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "model.safetensors")
	size := c.TotalBytes()
	readLimit(b, path, size, 0) // warm the page cache
	for _, mode := range []formats.SourceMode{formats.Pread, formats.Mmap} {
		b.Run(mode.String(), func(b *testing.B) {
			b.SetBytes(size)
			for range b.N {
				r, err := Scan(context.Background(), c, Options{Source: mode})
				if err != nil || !r.Healthy() {
					b.Fatalf("%v %+v", err, r.Findings)
				}
			}
		})
	}
	b.Run("readlimit", func(b *testing.B) {
		b.SetBytes(size)
		for range b.N {
			readLimit(b, path, size, 0)
		}
	})
}

// readLimit preads every byte of path with one goroutine per CPU, each into
// its own 8 MiB buffer, and touches one word per 64 bytes.
func readLimit(b *testing.B, path string, size int64, workers int) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if workers <= 0 {
		workers = max(1, min(64, int(size>>23)))
		workers = min(workers, runtimeCPUs())
	}
	const chunk = 8 << 20
	var next int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, chunk)
			var x byte
			for {
				mu.Lock()
				off := next
				next += chunk
				mu.Unlock()
				if off >= size {
					break
				}
				n, _ := f.ReadAt(buf[:min(chunk, size-off)], off)
				for i := 0; i < n; i += 64 {
					x ^= buf[i]
				}
			}
			sink = x
		}()
	}
	wg.Wait()
}

var sink byte

func runtimeCPUs() int { return runtime.GOMAXPROCS(0) }
