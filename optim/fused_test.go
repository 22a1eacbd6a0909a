package optim_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
	"github.com/ckpt-tool/ckpt/optim"
)

// TestScanOneRead checks State.Scan against the two-read path (inspect.Scan,
// then Check reading the moments again) on every Trainer fixture, as a
// directory and as optimizer.pt given directly: with the defaults, and with
// chunks of a few elements (so each tensor is many) and ranges of the update's
// sums of 16 elements (so a parameter is many units, shared by the workers)
// on 1, 2, 3 and 7 workers. The scan, the findings and the optimizer object
// must be the same to the bit, and every parameter with Adam state must have
// been predicted by the one-read pass.
func TestScanOneRead(t *testing.T) {
	dir, want := fixtures(t)
	for name := range want {
		for _, path := range []string{filepath.Join(dir, name), filepath.Join(dir, name, "optimizer.pt")} {
			checkOneRead(t, path, 0, 0, []int{0})
			func() {
				defer optim.SetSumRange(16)()
				checkOneRead(t, path, 64, 16, []int{1, 2, 3, 7})
				checkOneRead(t, path, 200, 16, []int{1, 7})
			}()
		}
	}
}

// checkOneRead compares the one-read scan of path on each number of workers
// with the two-read path, chunks of chunkBytes.
func checkOneRead(t *testing.T, path string, chunkBytes int, sumRange int64, workers []int) {
	t.Helper()
	c, err := formats.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	r0, err := inspect.Scan(context.Background(), c, inspect.Options{ChunkBytes: chunkBytes, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	s0, err := optim.Read(c)
	if err != nil || s0 == nil {
		t.Fatalf("%s: optim.Read = %v, %v", path, s0, err)
	}
	fs0, err := s0.Check(context.Background(), r0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range workers {
		opts := inspect.Options{Workers: w, ChunkBytes: chunkBytes}
		what := fmt.Sprintf("%s, %d workers, chunks of %d bytes, ranges of %d elements", path, w, chunkBytes, sumRange)
		c, err = formats.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		s1, err := optim.Read(c)
		if err != nil || s1 == nil {
			t.Fatalf("%s: optim.Read = %v, %v", what, s1, err)
		}
		r1, err := s1.Scan(context.Background(), c, opts)
		if err != nil {
			t.Fatal(err)
		}
		fs1, err := s1.Check(context.Background(), r1, 0)
		if err != nil {
			t.Fatal(err)
		}

		if g, w := fmt.Sprintf("%+v %+v", tensorsOf(r1), r1.Findings), fmt.Sprintf("%+v %+v", tensorsOf(r0), r0.Findings); g != w {
			t.Fatalf("%s: the one-read scan differs:\n got %s\nwant %s", what, g, w)
		}
		if g, w := fmt.Sprintf("%+v", fs1), fmt.Sprintf("%+v", fs0); g != w {
			t.Fatalf("%s: findings differ:\n got %s\nwant %s", what, g, w)
		}
		if g, w := mustJSON(s1), mustJSON(s0); !bytes.Equal(g, w) {
			t.Fatalf("%s: optimizer object differs:\n got %s\nwant %s", what, g, w)
		}
		for i, ok := range optim.OneRead(s1) {
			if p := s1.Params[i]; !ok && len(p.State) > 0 {
				t.Errorf("%s: %s was not predicted by the one-read pass", what, p.Label())
			}
		}
		if s1.MaxUpdate == nil {
			t.Errorf("%s: no predicted update", what)
		}
	}
}

// tensorsOf dereferences a result's tensor statistics for printing.
func tensorsOf(r *inspect.Result) []inspect.TensorStats {
	out := make([]inspect.TensorStats, len(r.Tensors))
	for i, ts := range r.Tensors {
		out[i] = *ts
	}
	return out
}
