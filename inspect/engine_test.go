package inspect

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
)

// mixedTensors is one tensor of each kind of kernel, some spanning several
// 64 KiB chunks, with NaN and infinities in the float ones.
func mixedTensors(rng *rand.Rand) []testTensor {
	return []testTensor{
		{"model.embed_tokens.weight", formats.BF16, []uint64{300, 1000}, realistic(rng, formats.BF16, 300_000, 0, 0.02, 7, 2, 3)},
		{"model.layers.0.input_layernorm.weight", formats.BF16, []uint64{1000}, realistic(rng, formats.BF16, 1000, 1, 0.05, 0, 0, 0)},
		{"half", formats.F16, []uint64{70_001}, realistic(rng, formats.F16, 70_001, 0.5, 2, 1, 0, 1)},
		{"single", formats.F32, []uint64{3, 33_333}, realistic(rng, formats.F32, 99_999, -1, 0.1, 2, 2, 0)},
		{"double", formats.F64, []uint64{20_000}, realistic(rng, formats.F64, 20_000, 0, 1, 0, 1, 0)},
		{"complex", formats.C64, []uint64{5_000}, realistic(rng, formats.C64, 10_000, 0, 1, 1, 0, 0)},
		{"fp8", formats.F8_E4M3, []uint64{100_000}, randomBits(rng, 100_000)},
		{"fp8b", formats.F8_E5M2, []uint64{257}, randomBits(rng, 257)},
		{"ints", formats.I32, []uint64{10_000}, randomBits(rng, 40_000)},
		{"shorts", formats.I16, []uint64{40_000}, randomBits(rng, 80_000)},
		{"bytes", formats.U8, []uint64{999}, randomBits(rng, 999)},
		{"mask", formats.BOOL, []uint64{5}, []byte{0, 1, 1, 0, 1}},
		{"fp4", formats.F4, []uint64{2, 10}, randomBits(rng, 10)},
		{"fp6", formats.F6_E3M2, []uint64{8}, randomBits(rng, 6)},
		{"scalar", formats.F32, []uint64{}, []byte{0, 0, 0x80, 0x3F}},
		{"empty", formats.BF16, []uint64{0, 4}, nil},
	}
}

// TestScanMatchesReference checks every tensor of a scan (several chunks per
// tensor, data at odd file offsets) against ReferenceStats over its whole data.
func TestScanMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	ts := mixedTensors(rng)
	path := filepath.Join(t.TempDir(), "mixed.safetensors")
	writeST(t, path, ts, true)
	r, err := ScanPath(context.Background(), path, Options{ChunkBytes: 64 << 10, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*TensorStats{}
	for _, s := range r.Tensors {
		byName[s.Name] = s
	}
	for _, x := range ts {
		s := byName[x.name]
		if s == nil || s.Skipped != "" {
			t.Fatalf("%s: not scanned (%v)", x.name, s)
		}
		checkAcc(t, x.name, s.Acc, ReferenceStats(x.dt, x.data), statsRel(x.dt))
		if s.FirstBad >= 0 && !reflect.DeepEqual(s.FirstBadCoords, Coords(x.shape, uint64(s.FirstBad))) {
			t.Fatalf("%s: coordinates %v of first bad %d", x.name, s.FirstBadCoords, s.FirstBad)
		}
	}
	if r.Healthy() {
		t.Fatal("a checkpoint with NaN scanned healthy")
	}
}

// TestScanWorkerIndependence scans the same two-file checkpoint with 1, 2 and
// 7 workers: tensors and findings must be identical to the bit.
func TestScanWorkerIndependence(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	dir := t.TempDir()
	writeST(t, filepath.Join(dir, "a.safetensors"), mixedTensors(rng), false)
	writeST(t, filepath.Join(dir, "b.safetensors"), mixedTensors(rng), true)
	var first *Result
	for _, w := range []int{1, 2, 7} {
		r, err := ScanPath(context.Background(), dir, Options{Workers: w, ChunkBytes: 48 << 10})
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = r
			if len(r.Tensors) != 32 {
				t.Fatalf("%d tensors scanned, want 32", len(r.Tensors))
			}
			continue
		}
		for i := range r.Tensors {
			// %+v prints every float in its shortest exact form (and -0 as
			// -0): equal strings mean equal bits.
			if fmt.Sprintf("%+v", *r.Tensors[i]) != fmt.Sprintf("%+v", *first.Tensors[i]) {
				t.Fatalf("workers %d: tensor %s differs:\n%+v\n%+v", w, r.Tensors[i].Name, r.Tensors[i], first.Tensors[i])
			}
		}
		if !reflect.DeepEqual(r.Findings, first.Findings) || r.Summary != first.Summary {
			t.Fatalf("workers %d: findings differ", w)
		}
	}
}

// TestScanTensorMatchesScan checks the single-tensor entry point against the
// engine, with both byte sources.
func TestScanTensorMatchesScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	path := filepath.Join(t.TempDir(), "m.safetensors")
	writeST(t, path, mixedTensors(rng), true)
	c, err := formats.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{ChunkBytes: 32 << 10}
	r, err := Scan(context.Background(), c, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []formats.SourceMode{formats.Pread, formats.Mmap} {
		src, err := formats.OpenSource(path, mode)
		if err != nil {
			t.Fatal(err)
		}
		for i, tensor := range c.Tensors {
			got, err := ScanTensor(src, tensor, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(&got, r.Tensors[i]) {
				t.Fatalf("%v: %s: ScanTensor %+v, Scan %+v", mode, tensor.Name, got, r.Tensors[i])
			}
		}
		src.Close()
	}
}

// TestScanSources checks that mmap and pread give the same result.
func TestScanSources(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	path := filepath.Join(t.TempDir(), "m.safetensors")
	writeST(t, path, mixedTensors(rng), true)
	a, err := ScanPath(context.Background(), path, Options{Source: formats.Pread})
	if err != nil {
		t.Fatal(err)
	}
	b, err := ScanPath(context.Background(), path, Options{Source: formats.Mmap})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Tensors, b.Tensors) || !reflect.DeepEqual(a.Findings, b.Findings) {
		t.Fatal("pread and mmap scans differ")
	}
}

// TestScanProgress checks that progress reports add up to the tensor bytes.
func TestScanProgress(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	ts := mixedTensors(rng)
	path := filepath.Join(t.TempDir(), "m.safetensors")
	writeST(t, path, ts, false)
	var total int64
	for _, x := range ts {
		total += int64(len(x.data))
	}
	var got atomic.Int64
	calls := 0
	_, err := ScanPath(context.Background(), path, Options{ChunkBytes: 16 << 10, Progress: func(n int64) { got.Add(n); calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	if got.Load() != total || calls < 20 {
		t.Fatalf("progress reported %d bytes in %d calls, want %d in many", got.Load(), calls, total)
	}
}

// TestScanCancelled checks that a cancelled context stops the scan.
func TestScanCancelled(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	path := filepath.Join(t.TempDir(), "m.safetensors")
	writeST(t, path, mixedTensors(rng), false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ScanPath(ctx, path, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	n := 0
	_, err := ScanPath(ctx, path, Options{ChunkBytes: 4 << 10, Workers: 1, Progress: func(int64) {
		if n++; n == 3 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled mid-scan: got %v, want context.Canceled", err)
	}
}

// TestScanFileShrank truncates one file of a two-file checkpoint between
// reading its header and scanning it: the scan must report a format finding
// naming that file, skip its unread tensors and scan the other file.
func TestScanFileShrank(t *testing.T) {
	for _, mode := range []formats.SourceMode{formats.Pread, formats.Mmap} {
		rng := rand.New(rand.NewPCG(23, 24))
		dir := t.TempDir()
		a, b := filepath.Join(dir, "a.safetensors"), filepath.Join(dir, "b.safetensors")
		writeST(t, a, mixedTensors(rng), false)
		writeST(t, b, mixedTensors(rng), false)
		c, err := formats.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(a)
		if err := os.Truncate(a, st.Size()/2); err != nil {
			t.Fatal(err)
		}
		r, err := Scan(context.Background(), c, Options{Source: mode, ChunkBytes: 32 << 10})
		if err != nil {
			t.Fatalf("%v: the scan failed instead of reporting: %v", mode, err)
		}
		var found bool
		for _, f := range r.Findings {
			if f.Check == CheckFormat && f.File == a && f.Severity == "error" {
				found = true
			}
		}
		if !found || r.Healthy() {
			t.Fatalf("%v: no format error for the shrunken file: %+v", mode, r.Findings)
		}
		skipped := 0
		for _, s := range r.Tensors {
			if s.File == b && s.Skipped != "" {
				t.Fatalf("%v: tensor %s of the intact file was skipped: %s", mode, s.Name, s.Skipped)
			}
			if s.File == a && s.Skipped != "" {
				skipped++
			}
		}
		if skipped == 0 {
			t.Fatalf("%v: no tensor of the shrunken file was marked skipped", mode)
		}
	}
}

// TestMappedFault truncates a mapped file under the kernel: the memory fault
// must come back as formats.ErrFault, not kill the process.
func TestMappedFault(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.safetensors")
	rng := rand.New(rand.NewPCG(25, 26))
	writeST(t, path, []testTensor{{"w", formats.BF16, []uint64{1 << 20}, realistic(rng, formats.BF16, 1<<20, 0, 1, 0, 0, 0)}}, false)
	src, err := formats.OpenSource(path, formats.Mmap)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, ok := src.(formats.Mapped); !ok {
		t.Skip("mmap not available here")
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	w := &worker{}
	_, err = w.scanChunk(src, formats.BF16, 4096, 1<<20)
	if !errors.Is(err, formats.ErrFault) {
		t.Fatalf("got %v, want ErrFault", err)
	}
}

// TestScanSkipsCutTensors scans a file cut short: the intact tensors are
// scanned, the cut ones skipped with a reason, and the format problem reported.
func TestScanSkipsCutTensors(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	path := filepath.Join(t.TempDir(), "cut.safetensors")
	ts := []testTensor{
		{"a", formats.F32, []uint64{1000}, realistic(rng, formats.F32, 1000, 0, 1, 0, 0, 0)},
		{"b", formats.F32, []uint64{1000}, realistic(rng, formats.F32, 1000, 0, 1, 0, 0, 0)},
	}
	writeST(t, path, ts, false)
	st, _ := os.Stat(path)
	if err := os.Truncate(path, st.Size()-100); err != nil {
		t.Fatal(err)
	}
	r, err := ScanPath(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Tensors[0].Skipped != "" || r.Tensors[0].Count != 1000 {
		t.Fatalf("intact tensor not scanned: %+v", r.Tensors[0])
	}
	if r.Tensors[1].Skipped == "" {
		t.Fatal("cut tensor not skipped")
	}
	if r.Healthy() {
		t.Fatal("a truncated file scanned healthy")
	}
}

// TestScanPieces checks chunks read in several pieces: 16-bit histograms
// and 8-bit pair histograms that accumulate over pieces, the first NaN in a
// later piece, and the other kernels merging piece by piece, with both
// sources, against the reference.
func TestScanPieces(t *testing.T) {
	rng := rand.New(rand.NewPCG(29, 30))
	const n = 1_500_000
	bf := weightsLike(rng, formats.BF16, n, 0, 0.02)
	copy(bf[2*700_001:], []byte{0xC1, 0x7F}) // NaN in the third 256 KiB piece
	copy(bf[2*1_400_000:], []byte{0x80, 0xFF})
	f16 := weightsLike(rng, formats.F16, n, 0, 1)
	copy(f16[2*200_000:], []byte{0x00, 0x7C})
	f32 := realistic(rng, formats.F32, n/2, 0, 1, 1, 1, 1)
	f8 := make([]byte, n+1)
	for i := range f8 {
		f8[i] = byte(rng.IntN(0x7F)) | byte(rng.IntN(2))<<7 // never 0x7F or 0xFF, the NaNs
	}
	f8[600_000], f8[1_200_001] = 0x7F, 0xFF // NaN in the third piece of the first chunk
	ts := []testTensor{
		{"bf", formats.BF16, []uint64{n}, bf},
		{"h", formats.F16, []uint64{n}, f16},
		{"f", formats.F32, []uint64{n / 2}, f32},
		{"f8", formats.F8_E4M3, []uint64{n + 1}, f8},
	}
	path := filepath.Join(t.TempDir(), "p.safetensors")
	writeST(t, path, ts, true)
	for _, mode := range []formats.SourceMode{formats.Pread, formats.Mmap} {
		r, err := ScanPath(context.Background(), path, Options{Source: mode, ChunkBytes: 2 << 20})
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range ts {
			for _, s := range r.Tensors {
				if s.Name == x.name {
					checkAcc(t, mode.String()+" "+x.name, s.Acc, ReferenceStats(x.dt, x.data), statsRel(x.dt))
				}
			}
		}
	}
}
