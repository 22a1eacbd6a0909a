package inspect

import (
	"github.com/ckpt-tool/ckpt/formats"
)

// Views: a PyTorch tensor that is not one row-major block (a transpose, a
// slice with a step, an expanded dimension) is scanned element by element in
// C order through its strides. Runs of consecutive elements (a last stride of
// 1) are copied whole; the bytes are read through a window of readBytes, so a
// view costs one read per window it touches, and the gathered elements go
// through the same kernels as any other tensor.

// scanStrided computes the accumulator of a strided tensor read from src.
func (w *worker) scanStrided(src formats.Source, t *formats.Tensor) (Acc, error) {
	es := int64(t.DType.Size())
	shape, strides := t.Shape, t.Strides
	acc := NewAcc()
	numel := t.Numel()
	if numel == 0 {
		return acc, nil
	}
	rank := len(shape)
	run := int64(1) // elements copied at a time
	if rank > 0 && strides[rank-1] == 1 {
		run = int64(shape[rank-1])
		shape, strides = shape[:rank-1], strides[:rank-1]
	}
	step := max(es, chunkLen(t.DType, readBytes))
	if int64(len(w.buf)) < step {
		w.buf = make([]byte, step)
	}
	out := make([]byte, 0, max(step, run*es))
	var win []byte
	winOff := int64(-1)
	// read copies n bytes at absolute offset off into out through the window.
	read := func(off, n int64) error {
		for n > 0 {
			if winOff < 0 || off < winOff || off >= winOff+int64(len(win)) {
				k := min(step, src.Size()-off)
				if k <= 0 {
					return formats.ErrTruncated
				}
				if _, err := src.ReadAt(w.buf[:k], off); err != nil {
					return err
				}
				win, winOff = w.buf[:k], off
			}
			k := min(n, winOff+int64(len(win))-off)
			out = append(out, win[off-winOff:off-winOff+k]...)
			off, n = off+k, n-k
		}
		return nil
	}
	flush := func() {
		if len(out) > 0 {
			a := w.sc.stats(t.DType, out)
			acc.Merge(&a)
			out = out[:0]
		}
	}
	idx := make([]uint64, len(shape))
	for done := uint64(0); done < numel; done += uint64(run) {
		off := t.Offset
		for i, k := range idx {
			off += int64(k) * strides[i] * es
		}
		if err := read(off, run*es); err != nil {
			return Acc{}, err
		}
		if int64(len(out)) >= step {
			flush()
		}
		for i := len(idx) - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < shape[i] {
				break
			}
			idx[i] = 0
		}
	}
	flush()
	return acc, nil
}
