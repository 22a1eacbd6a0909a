package probe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/ckpt-tool/ckpt/formats"
)

// chunkBytes bounds the float32 rows of one weight matrix held at a time (and
// the raw bytes they are decoded from): a model of any size is probed in
// memory of a few such blocks.
var chunkBytes = 32 << 20

// weights reads tensors of a checkpoint, decoded from any float dtype to
// float32 and rounded to the serving dtype (as model.to(dtype) would).
type weights struct {
	ck          *formats.Checkpoint
	dt          formats.DType
	mode        formats.SourceMode
	srcs        map[string]formats.Source
	workers     int
	raw         [2][]byte // double buffer: one block is read while the other is used
	dec         []float32
	progress    func(done, total int64)
	done, total int64
	// unrounded is the largest finite magnitude of the last linear's output
	// before it was rounded to the dtype.
	unrounded float64
}

func newWeights(ck *formats.Checkpoint, dt formats.DType, mode formats.SourceMode, workers int) *weights {
	return &weights{ck: ck, dt: dt, mode: mode, srcs: map[string]formats.Source{}, workers: workers}
}

func (w *weights) close() {
	for _, s := range w.srcs {
		s.Close()
	}
}

// has reports whether the checkpoint holds a tensor of that name.
func (w *weights) has(name string) bool { return w.ck.Tensor(name) != nil }

// tensor finds a tensor and checks that it can be read as a float matrix of
// the given shape.
func (w *weights) tensor(name string, shape ...int) (*formats.Tensor, error) {
	t := w.ck.Tensor(name)
	if t == nil {
		return nil, fmt.Errorf("%s: tensor %s is missing", w.ck.Path, name)
	}
	where := t.File.Path
	switch {
	case t.File.Err != nil:
		return nil, fmt.Errorf("%s: tensor %s cannot be read: %v", where, name, t.File.Err)
	case t.Cut:
		return nil, fmt.Errorf("%s: tensor %s is cut short by the end of the file", where, name)
	case !t.Contiguous():
		return nil, fmt.Errorf("%s: tensor %s is a strided view; probe reads contiguous tensors only", where, name)
	case !t.DType.IsFloat() || t.DType == formats.C64 || !t.DType.ByteAligned():
		return nil, fmt.Errorf("%s: tensor %s has dtype %s; probe reads float weights (F64, F32, F16, BF16, F8)", where, name, t.DType)
	}
	ok := len(t.Shape) == len(shape)
	for i := 0; ok && i < len(shape); i++ {
		ok = t.Shape[i] == uint64(shape[i])
	}
	if !ok {
		return nil, fmt.Errorf("%s: tensor %s has shape %v, but config.json implies %v", where, name, t.Shape, shape)
	}
	return t, nil
}

func (w *weights) source(t *formats.Tensor) (formats.Source, error) {
	if s, ok := w.srcs[t.File.Path]; ok {
		return s, nil
	}
	s, err := formats.OpenSource(t.File.Path, w.mode)
	if err != nil {
		return nil, err
	}
	st, err := s.Stat()
	if err == nil {
		err = t.File.CheckUnchanged(st)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	w.srcs[t.File.Path] = s
	return s, nil
}

// readRaw reads the bytes of elements [e0, e0+n) of t into buf (grown as needed).
func (w *weights) readRaw(t *formats.Tensor, e0, n int, buf []byte) ([]byte, error) {
	src, err := w.source(t)
	if err != nil {
		return nil, err
	}
	size := t.DType.Size()
	nb := n * size
	if cap(buf) < nb {
		buf = make([]byte, nb)
	}
	buf = buf[:nb]
	off := t.Offset + int64(e0)*int64(size)
	err = formats.CatchFault(t.File.Path, func() error {
		got, err := src.ReadAt(buf, off)
		if got == nb {
			return nil
		}
		if err == nil {
			err = errors.New("short read")
		}
		return fmt.Errorf("%s: reading tensor %s at offset %d: %w", t.File.Path, t.Name, off, err)
	})
	if w.progress != nil && err == nil {
		w.done += int64(nb)
		w.progress(w.done, max(w.total, w.done))
	}
	return buf, err
}

// vector reads a whole 1-D tensor.
func (w *weights) vector(name string, n int) ([]float32, error) {
	t, err := w.tensor(name, n)
	if err != nil {
		return nil, err
	}
	raw, err := w.readRaw(t, 0, n, nil)
	if err != nil {
		return nil, err
	}
	out := make([]float32, n)
	decode(t.DType, w.dt, raw, out)
	return out, nil
}

// rows reads rows of a 2-D tensor [R][K] (for an embedding lookup).
func (w *weights) rows(name string, R, K int, ids []int) ([]float32, error) {
	t, err := w.tensor(name, R, K)
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(ids)*K)
	var buf []byte
	for i, id := range ids {
		if id < 0 || id >= R {
			return nil, fmt.Errorf("token id %d is outside the vocabulary of %s (%d rows)", id, name, R)
		}
		if buf, err = w.readRaw(t, id*K, K, buf); err != nil {
			return nil, err
		}
		decode(t.DType, w.dt, buf, out[i*K:(i+1)*K])
	}
	return out, nil
}

// linear computes y = x·Wᵀ (+ b) for x of T rows of K, with W the R×K matrix
// name, streamed in blocks of rows. Each output is accumulated in float32 and,
// with the bias added, rounded once to the serving dtype: a half-precision
// matrix product on a GPU (cuBLAS with the bias epilogue) rounds its output once.
func (w *weights) linear(x []float32, T, K int, name string, R int, bias string) ([]float32, error) {
	t, err := w.tensor(name, R, K)
	if err != nil {
		return nil, err
	}
	var b []float32
	if bias != "" && w.has(bias) {
		if b, err = w.vector(bias, R); err != nil {
			return nil, err
		}
	}
	y := make([]float32, T*R)
	block := max(1, chunkBytes/(4*K))
	if len(w.dec) < min(block, R)*K {
		w.dec = make([]float32, min(block, R)*K)
	}
	type chunk struct {
		r0, n int
		raw   []byte
		err   error
	}
	// Read block i+1 while block i is decoded and multiplied.
	chunks := make(chan chunk) // unbuffered: the reader is at most one block ahead, so it never overwrites the block in use
	go func() {
		defer close(chunks)
		for i, r0 := 0, 0; r0 < R; i, r0 = i+1, r0+block {
			n := min(block, R-r0)
			raw, err := w.readRaw(t, r0*K, n*K, w.raw[i%2])
			w.raw[i%2] = raw
			chunks <- chunk{r0, n, raw, err}
			if err != nil {
				return
			}
		}
	}()
	var firstErr error
	for c := range chunks {
		if c.err != nil || firstErr != nil {
			if firstErr == nil {
				firstErr = c.err
			}
			continue
		}
		size := t.DType.Size()
		parallel(c.n, w.workers, func(lo, hi int) {
			dec := w.dec[lo*K : hi*K]
			decode(t.DType, w.dt, c.raw[lo*K*size:hi*K*size], dec)
			matmulFast(x, T, K, dec, hi-lo, y, R, c.r0+lo)
		})
	}
	if firstErr != nil {
		return nil, firstErr
	}
	for tt := 0; tt < T; tt++ {
		row := y[tt*R : (tt+1)*R]
		for i := range b {
			row[i] += b[i]
		}
	}
	w.unrounded = finiteAbsmax(y)
	roundFor(w.dt)(y) // rounding point: the matrix product's output
	return y, nil
}

// decode converts raw little-endian elements of dtype src to float32 values
// rounded to the serving dtype dt. A 16-bit source goes through a table of its
// 65536 patterns, already rounded (one load per element).
func decode(src, dt formats.DType, raw []byte, out []float32) {
	switch src {
	case formats.BF16, formats.F16:
		tab := table16(src, dt)
		for i := range out {
			out[i] = tab[binary.LittleEndian.Uint16(raw[2*i:])]
		}
	case formats.F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		roundFor(dt)(out)
	default: // F64 and the 8-bit floats: one rounding from the exact value
		for i := range out {
			out[i] = roundF64(dt, formats.Element(src, raw, i))
		}
	}
}

var (
	tablesMu sync.Mutex
	tables   = map[[2]formats.DType]*[1 << 16]float32{}
)

// table16 maps every pattern of a 16-bit float dtype to its value rounded to dt.
func table16(src, dt formats.DType) *[1 << 16]float32 {
	tablesMu.Lock()
	defer tablesMu.Unlock()
	key := [2]formats.DType{src, dt}
	if t := tables[key]; t != nil {
		return t
	}
	t := new([1 << 16]float32)
	for p := range t {
		var v float32
		if src == formats.BF16 {
			v = math.Float32frombits(uint32(p) << 16)
		} else {
			v = f16ToF32(uint16(p))
		}
		t[p] = round1(dt, v)
	}
	tables[key] = t
	return t
}
