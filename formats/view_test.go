package formats_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
)

// ViewReader gives a view's elements in C order through its strides, from
// the start or from any element (SkipTo), against a plain loop.
func TestViewReader(t *testing.T) {
	// Storage: 64 int32 values 0..63, after a 12-byte prefix.
	data := make([]byte, 12+64*4)
	for i := range 64 {
		binary.LittleEndian.PutUint32(data[12+4*i:], uint32(i))
	}
	src := bytes.NewReader(data)
	for _, c := range []struct {
		shape   []uint64
		strides []int64
		off     int64 // elements
	}{
		{[]uint64{3, 4}, []int64{1, 3}, 0},       // a transpose
		{[]uint64{4, 3}, []int64{8, 2}, 1},       // rows with a step
		{[]uint64{2, 3, 4}, []int64{0, 4, 1}, 5}, // expanded first dimension, contiguous rows
		{[]uint64{5}, []int64{7}, 2},
		{[]uint64{2, 2, 2}, []int64{16, 1, 4}, 3},
	} {
		tn := &formats.Tensor{TensorInfo: formats.TensorInfo{Name: "v", DType: formats.I32, Shape: c.shape}, Offset: 12 + 4*c.off, Strides: c.strides}
		var want []uint32
		idx := make([]uint64, len(c.shape))
		for n := tn.Numel(); n > 0; n-- {
			e := c.off
			for i, k := range idx {
				e += int64(k) * c.strides[i]
			}
			want = append(want, uint32(e))
			for i := len(idx) - 1; i >= 0; i-- {
				idx[i]++
				if idx[i] < c.shape[i] {
					break
				}
				idx[i] = 0
			}
		}
		for skip := 0; skip <= len(want); skip++ {
			r := formats.NewViewReader(src, int64(len(data)), tn)
			r.SkipTo(int64(4 * skip))
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 4*(len(want)-skip) {
				t.Fatalf("%v/%v skip %d: %d bytes", c.shape, c.strides, skip, len(got))
			}
			for i := range len(want) - skip {
				if v := binary.LittleEndian.Uint32(got[4*i:]); v != want[skip+i] {
					t.Fatalf("%v/%v skip %d: element %d is %d, want %d", c.shape, c.strides, skip, i, v, want[skip+i])
				}
			}
		}
	}
}
