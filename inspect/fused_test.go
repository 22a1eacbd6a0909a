package inspect

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
)

// sameResult fails unless two scans are equal to the bit: every tensor's
// statistics (%+v prints each float in its shortest exact form, and -0 as
// -0), the findings, the files and the summary.
func sameResult(t *testing.T, what string, got, want *Result) {
	t.Helper()
	if len(got.Tensors) != len(want.Tensors) {
		t.Fatalf("%s: %d tensors, want %d", what, len(got.Tensors), len(want.Tensors))
	}
	for i := range got.Tensors {
		if g, w := fmt.Sprintf("%+v", *got.Tensors[i]), fmt.Sprintf("%+v", *want.Tensors[i]); g != w {
			t.Fatalf("%s: tensor %s differs:\n got %s\nwant %s", what, want.Tensors[i].Name, g, w)
		}
	}
	if !reflect.DeepEqual(got.Findings, want.Findings) || !reflect.DeepEqual(got.Files, want.Files) || got.Summary != want.Summary {
		t.Fatalf("%s: findings or summary differ:\n got %+v %+v\nwant %+v %+v", what, got.Findings, got.Summary, want.Findings, want.Summary)
	}
}

// window is some bytes of a tensor handed to Fold.
type window struct {
	t   *formats.Tensor
	off int64
	raw []byte
}

// windows reads every scannable tensor of c in C order and cuts its bytes at
// the given offsets (relative to the tensor) into windows.
func windows(t *testing.T, c *formats.Checkpoint, cut func(total int64) []int64) []window {
	t.Helper()
	var out []window
	for _, tn := range c.Tensors {
		if tn.TiedTo != "" || unscannable(tn, tn.File.Size) != "" {
			continue
		}
		src, err := formats.OpenSource(tn.File.Path, formats.Pread)
		if err != nil {
			t.Fatal(err)
		}
		total := int64(tn.Numel()) * int64(tn.DType.Size())
		if tn.Contiguous() {
			total = tn.Length()
		}
		all := make([]byte, total)
		if _, err := io.ReadFull(formats.NewViewReader(src, src.Size(), tn), all); err != nil && total > 0 {
			t.Fatal(err)
		}
		src.Close()
		prev := int64(0)
		for _, at := range append(cut(total), total) {
			if at > prev && at <= total {
				out = append(out, window{tn, prev, all[prev:at]})
				prev = at
			}
		}
	}
	return out
}

// foldAll folds the windows into sp from the given number of goroutines and
// returns the bytes of the chunks that lie wholly within one window (those
// Fold takes).
func foldAll(sp *ScanPlan, ws []window, goroutines int) (folded int64) {
	for _, w := range ws {
		if w.t.TiedTo != "" {
			continue
		}
		step, total := sp.chunking(w.t)
		for lo := int64(0); lo < total; lo += step {
			if lo >= w.off && min(lo+step, total) <= w.off+int64(len(w.raw)) {
				folded += min(lo+step, total) - lo
			}
		}
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var f Folder
			for i := g; i < len(ws); i += goroutines {
				sp.Fold(&f, ws[i].t, ws[i].off, ws[i].raw)
			}
		}()
	}
	wg.Wait()
	return folded
}

// scanBytes is how many bytes a scan of c reads.
func scanBytes(c *formats.Checkpoint) int64 {
	var n int64
	for _, tn := range c.Tensors {
		n += PartWeight(tn)
	}
	return n
}

// TestScanPlanMatchesScan folds a checkpoint's bytes into a ScanPlan in
// windows of every kind (whole tensors, the scan's own chunks, random cuts
// that leave chunks straddling two windows, nothing at all), from several
// goroutines, then finishes it with 1, 2 and 7 workers: the result must be
// Scan's to the bit, and Finish must have read exactly the chunks not folded.
func TestScanPlanMatchesScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	dir := t.TempDir()
	writeST(t, filepath.Join(dir, "a.safetensors"), mixedTensors(rng), false)
	writeST(t, filepath.Join(dir, "b.safetensors"), mixedTensors(rng), true)
	c, err := formats.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	const chunk = 48 << 10
	want, err := Scan(context.Background(), c, Options{Workers: 1, ChunkBytes: chunk})
	if err != nil {
		t.Fatal(err)
	}
	if want.Healthy() {
		t.Fatal("the checkpoint holds NaN and infinities: the test needs an unhealthy scan")
	}
	cuts := map[string]func(total int64) []int64{
		"whole tensors": func(int64) []int64 { return nil },
		"scan chunks": func(total int64) []int64 {
			var at []int64
			for off := int64(chunk); off < total; off += chunk {
				at = append(at, off)
			}
			return at
		},
		"twice the scan chunk": func(total int64) []int64 {
			var at []int64
			for off := int64(2 * chunk); off < total; off += 2 * chunk {
				at = append(at, off)
			}
			return at
		},
		"random cuts": func(total int64) []int64 {
			var at []int64
			for off := int64(0); off < total; {
				off += 1 + rng.Int64N(3*chunk)
				at = append(at, off)
			}
			return at
		},
	}
	for name, cut := range cuts {
		ws := windows(t, c, cut)
		for _, workers := range []int{1, 2, 7} {
			for _, fold := range []bool{true, false} {
				sp := NewScanPlan(c, Options{Workers: workers, ChunkBytes: chunk})
				var folded int64
				if fold {
					folded = foldAll(sp, ws, 3)
				}
				got, err := sp.Finish(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				what := fmt.Sprintf("%s, folded %v, %d workers", name, fold, workers)
				sameResult(t, what, got, want)
				total := scanBytes(c)
				if sp.BytesRead() != total-folded {
					t.Errorf("%s: Finish read %d bytes, want the %d not folded", what, sp.BytesRead(), total-folded)
				}
				if fold && name != "random cuts" && sp.BytesRead() != 0 {
					t.Errorf("%s: Finish read %d bytes though every chunk was folded", what, sp.BytesRead())
				}
			}
		}
	}
}

// TestScanPlanViewsAndTied folds a strided view (read through its strides)
// and a tensor tied to another: the view's one chunk is folded from its
// C-order bytes, the tied tensor is ignored (it takes its target's
// statistics), and the result is Scan's.
func TestScanPlanViewsAndTied(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	path := filepath.Join(t.TempDir(), "views.bin")
	base := realistic(rng, formats.F32, 200*300, 0, 1, 3, 1, 1)
	c := writeLocated(t, path, []testTensor{{"base", formats.F32, []uint64{200, 300}, base}})
	f := c.Files[0]
	b := c.Tensors[0]
	view := &formats.Tensor{TensorInfo: formats.TensorInfo{Name: "base.t", DType: formats.F32, Shape: []uint64{300, 200}, Begin: b.Begin, End: b.End},
		File: f, Offset: b.Offset, Strides: []int64{1, 300}}
	tied := &formats.Tensor{TensorInfo: formats.TensorInfo{Name: "tied", DType: formats.F32, Shape: b.Shape, Begin: b.Begin, End: b.End},
		File: f, Offset: b.Offset, TiedTo: "base"}
	f.Located = append(f.Located, view, tied)
	c.Tensors = f.Located
	want, err := Scan(context.Background(), c, Options{Workers: 1, ChunkBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if want.Tensors[1].Skipped != "" || want.Tensors[2].NaN != want.Tensors[0].NaN || want.Tensors[0].NaN == 0 {
		t.Fatalf("the test checkpoint is not what it should be: %+v", want.Tensors)
	}
	for _, workers := range []int{1, 3} {
		sp := NewScanPlan(c, Options{Workers: workers, ChunkBytes: 64 << 10})
		ws := windows(t, c, func(int64) []int64 { return nil })
		// A tied tensor is not read for itself: Fold ignores it.
		ws = append(ws, window{tied, 0, base})
		foldAll(sp, ws, workers)
		got, err := sp.Finish(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		sameResult(t, fmt.Sprintf("%d workers", workers), got, want)
		if sp.BytesRead() != 0 {
			t.Errorf("Finish read %d bytes though every chunk was folded", sp.BytesRead())
		}
	}
	// Windows cut at 4000 bytes: the view's one chunk and the base's first
	// straddle them, and Finish reads those.
	sp := NewScanPlan(c, Options{Workers: 2, ChunkBytes: 64 << 10})
	folded := foldAll(sp, windows(t, c, func(int64) []int64 { return []int64{4000} }), 2)
	got, err := sp.Finish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sameResult(t, "windows cut at 4000", got, want)
	if n := int64(len(base)) + 64<<10; sp.BytesRead() != n || scanBytes(c)-folded != n {
		t.Errorf("Finish read %d bytes (%d not folded), want the view's and a chunk's %d", sp.BytesRead(), scanBytes(c)-folded, n)
	}
}

// TestScanPlanStreamedChunks streams chunks into a ScanPlan piece by piece
// (BeginChunk, Piece, EndChunk; every chunk, or every other one, one per
// goroutine aborted after its first piece) from two goroutines, with chunks of one piece and of
// several: the result must be Scan's to the bit, and Finish must read less
// than the whole scan.
func TestScanPlanStreamedChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(45, 46))
	dir := t.TempDir()
	writeST(t, filepath.Join(dir, "a.safetensors"), mixedTensors(rng), true)
	c, err := formats.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ws := windows(t, c, func(int64) []int64 { return nil }) // whole tensors
	for _, chunkBytes := range []int{48 << 10, 1 << 20} {
		opts := Options{Workers: 2, ChunkBytes: chunkBytes}
		want, err := Scan(context.Background(), c, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, every := range []int{1, 2} {
			sp := NewScanPlan(c, opts)
			var wg sync.WaitGroup
			for g := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var f Folder
					aborted := false
					for i := g; i < len(ws); i += 2 {
						w := ws[i]
						chunk, piece, total, ok := sp.Chunks(w.t)
						if !ok {
							if sp.BeginChunk(&f, w.t, 0) {
								t.Errorf("%s: BeginChunk took a tensor Chunks refuses", w.t.Name)
							}
							continue
						}
						for k := 0; int64(k)*chunk < total; k += every {
							if !sp.BeginChunk(&f, w.t, k) {
								t.Errorf("%s: BeginChunk refused chunk %d", w.t.Name, k)
								continue
							}
							lo, hi := int64(k)*chunk, min(int64(k+1)*chunk, total)
							// Abort the first chunk of several pieces (or of
							// one, when none has several) after one piece.
							abort := !aborted && (hi-lo > piece || chunk < piece)
							aborted = aborted || abort
							for p := lo; p < hi; p += piece {
								f.Piece(w.raw[p:min(p+piece, hi)])
								if abort {
									break
								}
							}
							sp.EndChunk(&f, abort)
						}
					}
				}()
			}
			wg.Wait()
			got, err := sp.Finish(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			what := fmt.Sprintf("chunks of %d bytes, every %d", chunkBytes, every)
			sameResult(t, what, got, want)
			if sp.BytesRead() >= scanBytes(c) || sp.BytesRead() == 0 {
				t.Errorf("%s: Finish read %d of %d bytes", what, sp.BytesRead(), scanBytes(c))
			}
		}
	}
}
