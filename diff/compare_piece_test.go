package diff

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
)

// withPieceBytes runs f with chunks read n bytes at a time.
func withPieceBytes(n int, f func()) {
	old := pieceBytes
	pieceBytes = n
	defer func() { pieceBytes = old }()
	f()
}

// pieceRun writes a series of checkpoints whose tensors span many pieces, and
// tail.safetensors (see below):
// every value changed, only the end of a tensor changed (identical pieces
// before a changed one in the same chunk), nothing changed, non-finite
// values, and dtypes folded by the fast kernels, by decoding, and sub-byte.
func pieceRun(t *testing.T, dir string, n int) []string {
	r := rand.New(rand.NewSource(91))
	type spec struct {
		dt    formats.DType
		numel int
	}
	specs := []spec{{formats.BF16, 200_000}, {formats.F32, 90_001}, {formats.F16, 70_000}, {formats.F64, 40_000},
		{formats.F8_E4M3, 150_000}, {formats.F4, 300_002}, {formats.BF16, 5}}
	base := make([][]byte, len(specs))
	for i, s := range specs {
		base[i], _ = randomPair(r, s.dt, s.numel)
	}
	var paths []string
	for c := 0; c < n; c++ {
		var ts []tensor
		for i, s := range specs {
			_, b := randomPair(r, s.dt, s.numel)
			switch i % 3 {
			case 0: // every value may change
				base[i] = b
			case 1: // only the last tenth changes
				tail := len(b) - len(b)/10
				copy(base[i][tail:], b[tail:])
			}
			shape := []uint64{uint64(s.numel)}
			ts = append(ts, tensor{fmt.Sprintf("t%d.%s", i, s.dt), s.dt, shape, append([]byte(nil), base[i]...)})
		}
		p := filepath.Join(dir, fmt.Sprintf("c%d.safetensors", c))
		writeST(t, p, ts...)
		paths = append(paths, p)
		if c == n-1 {
			// The last checkpoint with only the end of its first tensor
			// changed: the comparison's first change comes after
			// identical pieces of the same chunk.
			_, b := randomPair(r, specs[0].dt, specs[0].numel)
			tail := len(b) - len(b)/10
			ts[0].raw = append(append([]byte(nil), ts[0].raw[:tail]...), b[tail:]...)
			writeST(t, filepath.Join(dir, "tail.safetensors"), ts...)
		}
	}
	return paths
}

// TestComparePiecesMatchWholeChunks: a chunk read piece by piece gives the
// result of the chunk read whole, to the bit, with the same bytes read and
// values decoded, for single comparisons, series and strided views.
func TestComparePiecesMatchWholeChunks(t *testing.T) {
	dir := t.TempDir()
	paths := pieceRun(t, dir, 4)
	// A copy of the last checkpoint: nothing changed, nothing decoded.
	same := filepath.Join(dir, "same.safetensors")
	raw, err := os.ReadFile(paths[3])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(same, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	// PyTorch files with a strided view.
	rng := rand.New(rand.NewSource(7))
	va := normals(rng, 60_000, 1)
	vb := make([]float64, len(va))
	copy(vb, va)
	for i := 50_000; i < len(vb); i++ {
		vb[i] *= 1.01
	}
	vb[55_000] = math.NaN()
	torchViews(t, filepath.Join(dir, "a.bin"), va)
	torchViews(t, filepath.Join(dir, "b.bin"), vb)
	tail := filepath.Join(dir, "tail.safetensors")
	pairs := [][2]string{{paths[0], paths[1]}, {paths[2], paths[3]}, {paths[3], same}, {paths[3], tail}, {filepath.Join(dir, "a.bin"), filepath.Join(dir, "b.bin")}}
	ctx := context.Background()
	for _, o := range []Options{{Workers: 1}, {Workers: 1, ChunkBytes: 100_000}, {Workers: 2, ChunkBytes: 200_000}, {Workers: 3}} {
		for _, pr := range pairs {
			var want, got *Result
			var err error
			withPieceBytes(1<<40, func() { want, err = ComparePaths(ctx, pr[0], pr[1], o) })
			if err != nil {
				t.Fatal(err)
			}
			for _, pb := range []int{1, 40_000} {
				withPieceBytes(pb, func() { got, err = ComparePaths(ctx, pr[0], pr[1], o) })
				if err != nil {
					t.Fatal(err)
				}
				if o.Workers > 1 {
					// Which identical chunks are met before the first change
					// depends on the workers' pace.
					got.Work, want.Work = Work{}, Work{}
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%+v %s: pieces of %d bytes:\n got  %+v\n want %+v", o, filepath.Base(pr[1]), pb, got.Summary, want.Summary)
					for i, d := range got.Tensors {
						if !reflect.DeepEqual(d, want.Tensors[i]) {
							t.Errorf("  %s: got %+v, want %+v", d.Name, *d, *want.Tensors[i])
						}
					}
				}
			}
		}
		var want, got []*Result
		var err error
		withPieceBytes(1<<40, func() { want, err = CompareSeries(ctx, append(paths, same), o) })
		if err != nil {
			t.Fatal(err)
		}
		withPieceBytes(1, func() { got, err = CompareSeries(ctx, append(paths, same), o) })
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%+v: the series read by pieces differs from the series read by chunks", o)
		}
	}
}

// TestPieceScalarsWholeSubBlocks: pieces are whole sub-blocks, so the
// kernels fold the same runs of values as from a chunk read whole.
func TestPieceScalarsWholeSubBlocks(t *testing.T) {
	for _, dt := range []formats.DType{formats.BF16, formats.F32, formats.F64, formats.F4, formats.F8_E5M2, formats.C64, formats.I32} {
		tn := &formats.Tensor{TensorInfo: formats.TensorInfo{DType: dt}}
		n := pieceScalars(&pairWork{ta: tn, tb: tn})
		if n == 0 || n%subBlock != 0 || n%scalarAlign(dt) != 0 {
			t.Errorf("%s: pieces of %d values", dt, n)
		}
		if b := n * uint64(scalarBits(dt)) / 8; b > uint64(pieceBytes) && n > subBlock {
			t.Errorf("%s: pieces of %d bytes, more than %d", dt, b, pieceBytes)
		}
	}
}

// TestCompareScanStreamsPieces: with the default chunks, tensors of many
// pieces stream B's pieces into B's scan, which then reads nothing itself,
// and both results are those of the separate Compare and Scan to the bit.
func TestCompareScanStreamsPieces(t *testing.T) {
	dir := t.TempDir()
	paths := pieceRun(t, dir, 2)
	a, b := open(t, paths[0]), open(t, paths[1])
	const own = 0 // F8 and F4 chunks are read whole and folded (Fold): nothing is left to the scan
	for _, workers := range []int{1, 2} {
		r := checkCompareScan(t, fmt.Sprintf("%d workers", workers), a, b, Options{Workers: workers}, inspect.Options{Workers: workers})
		if r.Work.ScanBytesRead != own {
			t.Errorf("%d workers: the scan read %d bytes itself, want %d", workers, r.Work.ScanBytesRead, own)
		}
	}
	sp := inspect.NewScanPlan(b, inspect.Options{})
	if _, piece, _, ok := sp.Chunks(b.Tensor("t0.BF16")); !ok || piece != int64(pieceBytes) {
		t.Errorf("the scan reads pieces of %d bytes, the comparison of %d", piece, pieceBytes)
	}
	var streamed int
	for _, tn := range b.Tensors {
		n := scalarCount(tn)
		pw := &pairWork{ta: a.Tensor(tn.Name), tb: tn}
		e := &engine{scan: sp, scanFiles: map[string]bool{tn.File.Path: true}}
		if scanFeed(e, tn, task{s0: 0, s1: n}, pieceScalars(pw)).mode == scanStream {
			streamed++
		}
	}
	if streamed < 3 {
		t.Errorf("%d tensors streamed to the scan, want the BF16, F16 and F32 ones", streamed)
	}
}
