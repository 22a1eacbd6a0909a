package inspect

import (
	"io"

	"github.com/ckpt-tool/ckpt/formats"
)

// scanStrided computes the accumulator of a strided tensor (a PyTorch view)
// read from src element by element in C order through its strides
// (formats.ViewReader), a readBytes piece at a time through the same kernels
// as any other tensor.
func (w *worker) scanStrided(src formats.Source, t *formats.Tensor) (Acc, error) {
	acc := NewAcc()
	step := chunkLen(t.DType, readBytes)
	if int64(len(w.buf)) < step {
		w.buf = make([]byte, step)
	}
	r := formats.NewViewReader(src, src.Size(), t)
	total := int64(t.Numel()) * int64(t.DType.Size())
	for done := int64(0); done < total; {
		b := w.buf[:min(step, total-done)]
		if _, err := io.ReadFull(r, b); err != nil {
			return Acc{}, err
		}
		a := w.sc.stats(t.DType, b)
		acc.Merge(&a)
		done += int64(len(b))
	}
	return acc, nil
}

// foldStrided is scanStrided over a view's elements already read (in C
// order, as formats.ViewReader gives them): the same pieces, the same
// kernels, the same accumulator.
func (w *worker) foldStrided(dt formats.DType, data []byte) Acc {
	acc := NewAcc()
	step := int(chunkLen(dt, readBytes))
	for done := 0; done < len(data); {
		b := data[done:min(done+step, len(data))]
		a := w.sc.stats(dt, b)
		acc.Merge(&a)
		done += len(b)
	}
	return acc
}
