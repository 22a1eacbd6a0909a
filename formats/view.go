package formats

import (
	"io"
)

// viewWindow is how much of the file a ViewReader reads at a time.
const viewWindow = 256 << 10

// ViewReader reads a tensor's elements in C (row-major) order: a contiguous
// tensor's bytes as they are, a strided view (a PyTorch transpose, step slice
// or expanded dimension) element by element through its strides. Runs of
// consecutive elements (a last stride of 1) are copied whole, through a
// window of the file, so a view costs one read per window it touches.
type ViewReader struct {
	src     io.ReaderAt
	size    int64
	t       *Tensor
	es      int64
	shape   []uint64 // outer dimensions (the last is folded into run when its stride is 1)
	strides []int64
	run     int64 // elements per contiguous run
	idx     []uint64
	left    uint64 // runs not yet started
	pending []byte // the rest of the current run
	win     []byte
	winOff  int64
	runDone int64 // bytes of the current run already handed out
}

// NewViewReader returns a reader of t's elements from src (t's file, of the
// given size).
func NewViewReader(src io.ReaderAt, size int64, t *Tensor) *ViewReader {
	v := &ViewReader{src: src, size: size, t: t, es: int64(max(t.DType.Size(), 1)), run: 1, winOff: -1}
	shape, strides := t.Shape, t.Strides
	if strides == nil {
		// Contiguous: one run of every element.
		v.run = int64(t.Numel())
		shape, strides = nil, nil
	} else if n := len(shape); n > 0 && strides[n-1] == 1 {
		v.run = int64(shape[n-1])
		shape, strides = shape[:n-1], strides[:n-1]
	}
	v.shape, v.strides = shape, strides
	v.idx = make([]uint64, len(shape))
	v.left = 1
	for _, d := range shape {
		v.left *= d
	}
	if t.Numel() == 0 || v.run == 0 {
		v.left = 0
	}
	return v
}

// SkipTo positions a reader that has not been read yet at byte off of the
// tensor's C-order bytes (a whole number of elements).
func (v *ViewReader) SkipTo(off int64) {
	if off <= 0 || v.left == 0 {
		return
	}
	e := off / v.es
	r := uint64(e / v.run)
	v.runDone = (e % v.run) * v.es
	if r >= v.left {
		v.left, v.runDone = 0, 0
		return
	}
	v.left -= r
	for i := len(v.idx) - 1; i >= 0; i-- {
		v.idx[i] = r % v.shape[i]
		r /= v.shape[i]
	}
}

// Read implements io.Reader.
func (v *ViewReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(v.pending) == 0 {
			if v.left == 0 {
				if n == 0 {
					return 0, io.EOF
				}
				return n, nil
			}
			if err := v.nextRun(); err != nil {
				return n, err
			}
		}
		k := copy(p[n:], v.pending)
		v.pending = v.pending[k:]
		n += k
	}
	return n, nil
}

// nextRun reads the next run, at most one window of it: pending holds what
// is ready; a run longer than a window is continued by later calls.
func (v *ViewReader) nextRun() error {
	off := v.t.Offset
	for i, k := range v.idx {
		off += int64(k) * v.strides[i] * v.es
	}
	// Continue a long run: v.runDone counts bytes of it already handed out.
	off += v.runDone
	want := v.run*v.es - v.runDone
	if v.winOff < 0 || off < v.winOff || off >= v.winOff+int64(len(v.win)) || len(v.win) == 0 {
		k := min(int64(viewWindow), v.size-off)
		if k <= 0 {
			return io.ErrUnexpectedEOF
		}
		if int64(cap(v.win)) < k {
			v.win = make([]byte, viewWindow)
		}
		v.win = v.win[:k]
		if _, err := v.src.ReadAt(v.win, off); err != nil && err != io.EOF {
			return err
		}
		v.winOff = off
	}
	avail := min(want, v.winOff+int64(len(v.win))-off)
	v.pending = v.win[off-v.winOff : off-v.winOff+avail]
	v.runDone += avail
	if v.runDone == v.run*v.es {
		v.runDone = 0
		v.left--
		for i := len(v.idx) - 1; i >= 0; i-- {
			v.idx[i]++
			if v.idx[i] < v.shape[i] {
				break
			}
			v.idx[i] = 0
		}
	}
	return nil
}
