package synth

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/ckpt-tool/ckpt/formats"
)

// The corruption injectors. Each damages a generated checkpoint in one precise
// way, in place; none of them is meant for files the caller cares about. A path
// is a .safetensors file or a checkpoint directory (for the tensor-level
// injectors, which find the tensor's file through formats.Open).

// locate finds a tensor of the checkpoint at path, in a file that reads cleanly.
func locate(path, tensor string) (*formats.Tensor, error) {
	c, err := formats.Open(path)
	if err != nil {
		return nil, err
	}
	t := c.Tensor(tensor)
	if t == nil {
		return nil, fmt.Errorf("%s: no tensor %q", path, tensor)
	}
	if t.File.Err != nil {
		return nil, fmt.Errorf("%s: tensor %q is in a file that does not read cleanly: %w", path, tensor, t.File.Err)
	}
	if !t.DType.IsFloat() {
		return nil, fmt.Errorf("%s: tensor %q has dtype %s, not a float dtype", path, tensor, t.DType)
	}
	return t, nil
}

// elemType is the dtype elements are addressed in: C64 tensors as their F32
// halves (2·numel of them).
func elemType(t *formats.Tensor) (formats.DType, uint64) {
	if t.DType == formats.C64 {
		return formats.F32, 2 * t.Numel()
	}
	return t.DType, t.Numel()
}

// patchElement reads the span of element i, calls fn on it, and writes it back.
func patchElement(t *formats.Tensor, i int, fn func(span []byte, shift uint) error) error {
	dt, numel := elemType(t)
	if i < 0 || uint64(i) >= numel {
		return fmt.Errorf("%s: tensor %q has %d elements, no element %d", t.File.Path, t.Name, numel, i)
	}
	off, n, shift := elemSpan(dt, uint64(i))
	f, err := os.OpenFile(t.File.Path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	span := make([]byte, n)
	at := t.Offset + int64(off)
	if _, err := f.ReadAt(span, at); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", t.File.Path, err)
	}
	if err := fn(span, shift); err != nil {
		f.Close()
		return fmt.Errorf("%s: tensor %q element %d: %w", t.File.Path, t.Name, i, err)
	}
	if _, err := f.WriteAt(span, at); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// SetValues sets chosen elements of a float tensor (any float dtype, C64 counting
// each F32 half as an element) to the given values: NaN, ±Inf, huge or anything
// else. A value the dtype cannot hold (Inf in F8_E4M3, a finite value beyond its
// range) is an error and nothing more is written.
func SetValues(path, tensor string, elems map[int]float64) error {
	t, err := locate(path, tensor)
	if err != nil {
		return err
	}
	dt, _ := elemType(t)
	pats := map[int]uint64{}
	for i, v := range elems {
		p, err := encodeBits(dt, v)
		if err != nil {
			return fmt.Errorf("%s: tensor %q element %d: %w", path, tensor, i, err)
		}
		pats[i] = p
	}
	for _, i := range sortedInts(pats) {
		err := patchElement(t, i, func(span []byte, shift uint) error {
			putBits(dt, span, shift, pats[i])
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// ExponentTopBit is the bit of a float dtype's pattern that FlipExponentBit
// flips: the most significant exponent bit.
func ExponentTopBit(dt formats.DType) int {
	if dt == formats.F8_E8M0 {
		return 7 // exponent only, no sign
	}
	if dt == formats.C64 {
		return 30
	}
	return dt.Bits() - 2
}

// FlipExponentBit flips the most significant exponent bit of one element, the
// single-bit memory or storage error that turns a small weight into a huge one
// (a bf16 0.02 becomes about 6.8e36) or a huge one into a tiny one.
func FlipExponentBit(path, tensor string, elem int) error {
	t, err := locate(path, tensor)
	if err != nil {
		return err
	}
	dt, _ := elemType(t)
	bit := ExponentTopBit(dt)
	return patchElement(t, elem, func(span []byte, shift uint) error {
		putBits(dt, span, shift, getBits(dt, span, shift)^1<<uint(bit))
		return nil
	})
}

// ScaleTensor multiplies every element of a float tensor by factor, rounding to
// its dtype, in place (chunk by chunk). NaN and Inf stay as they are; a product
// the dtype cannot hold is an error, reported before anything is written.
func ScaleTensor(path, tensor string, factor float64) error {
	t, err := locate(path, tensor)
	if err != nil {
		return err
	}
	dt, numel := elemType(t)
	f, err := os.OpenFile(t.File.Path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	// Chunks of a multiple of 8 elements start and end on byte boundaries for
	// every dtype, the packed ones included.
	const chunk = 1 << 16
	scaled := func(write bool) error {
		buf := make([]byte, chunk*8)
		for first := uint64(0); first < numel; first += chunk {
			m := min(chunk, numel-first)
			off, _, _ := elemSpan(dt, first)
			end := (first + m) * uint64(dt.Bits())
			nbytes := (end+7)/8 - off
			b := buf[:nbytes]
			if _, err := f.ReadAt(b, t.Offset+int64(off)); err != nil {
				return fmt.Errorf("%s: %w", t.File.Path, err)
			}
			for i := uint64(0); i < m; i++ {
				v := formats.Element(dt, b, int(i))
				p, err := encodeBits(dt, v*factor)
				if err != nil {
					return fmt.Errorf("%s: tensor %q element %d: %g × %g: %w", path, tensor, first+i, v, factor, err)
				}
				o, n, shift := elemSpan(dt, i)
				putBits(dt, b[o:o+uint64(n)], shift, p)
			}
			if write {
				if _, err := f.WriteAt(b, t.Offset+int64(off)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := scaled(false); err != nil { // check first: never leave a half-scaled tensor
		return err
	}
	if err := scaled(true); err != nil {
		return err
	}
	return f.Close()
}

// Truncate cuts the last cut bytes off a file, as an interrupted save or
// download leaves it.
func Truncate(path string, cut int64) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if cut <= 0 || cut > st.Size() {
		return fmt.Errorf("%s: cannot cut %d bytes off a %d-byte file", path, cut, st.Size())
	}
	return os.Truncate(path, st.Size()-cut)
}

// RemoveShard deletes shard k (1-based, in the index's sorted order of shard
// names) of the sharded checkpoint in dir, and returns its name.
func RemoveShard(dir string, k int) (string, error) {
	ix, err := formats.ReadIndex(filepath.Join(dir, IndexName))
	if err != nil {
		return "", err
	}
	shards := ix.Shards()
	if k < 1 || k > len(shards) {
		return "", fmt.Errorf("%s: the index names %d shards, no shard %d", dir, len(shards), k)
	}
	p, err := formats.SafeJoin(dir, shards[k-1])
	if err != nil {
		return "", err
	}
	return shards[k-1], os.Remove(p)
}

// OverlapOffsets rewrites a file's header so that its second tensor (in data
// order) starts inside the first: both its data_offsets move back by one
// element's width (or the first tensor's length, if shorter). The header keeps
// its length (shortened numbers are made up with trailing spaces), so the first
// read rule broken is the reference's contiguous-offsets rule. It returns the
// moved tensor's name.
func OverlapOffsets(path string) (string, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	h, err := formats.ReadHeader(path, f, st.Size())
	if err != nil {
		return "", err
	}
	if len(h.Tensors) < 2 || h.Tensors[0].End == 0 {
		return "", fmt.Errorf("%s: needs two tensors, the first not empty, to overlap", path)
	}
	t := h.Tensors[1]
	shift := min(uint64(max(1, t.DType.Size())), h.Tensors[0].End)
	text := make([]byte, h.Len)
	if _, err := f.ReadAt(text, 8); err != nil {
		return "", err
	}
	old := fmt.Appendf(nil, `"data_offsets":[%d,%d]`, t.Begin, t.End)
	repl := fmt.Appendf(nil, `"data_offsets":[%d,%d]`, t.Begin-shift, t.End-shift)
	if bytes.Count(text, old) != 1 {
		return "", fmt.Errorf("%s: header is not in the compact form this injector edits", path)
	}
	text = bytes.Replace(text, old, repl, 1)
	for uint64(len(text)) < h.Len {
		text = append(text, ' ')
	}
	if _, err := f.WriteAt(text, 8); err != nil {
		return "", err
	}
	return t.Name, f.Close()
}

// WriteLFSPointer replaces a file with the Git LFS pointer a clone without
// git-lfs would hold in its place (naming the original's sha256 and size).
func WriteLFSPointer(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	f.Close()
	if err != nil {
		return err
	}
	ptr := fmt.Sprintf("version https://git-lfs.github.com/spec/v1\noid sha256:%x\nsize %d\n", h.Sum(nil), n)
	return writeFile(path, []byte(ptr))
}

// EscapeIndex rewrites the index of the sharded checkpoint in dir so that the
// first tensor (by name) maps to "../<its shard>", a path outside the
// checkpoint directory. It returns that tensor's name.
func EscapeIndex(dir string) (string, error) {
	p := filepath.Join(dir, IndexName)
	ix, err := formats.ReadIndex(p)
	if err != nil {
		return "", err
	}
	names := sortedNames(ix.WeightMap)
	if len(names) == 0 {
		return "", fmt.Errorf("%s: empty weight_map", p)
	}
	ix.WeightMap[names[0]] = "../" + ix.WeightMap[names[0]]
	return names[0], WriteIndex(p, ix.Metadata, ix.WeightMap)
}

func sortedInts[V any](m map[int]V) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

// TensorBytes reads the raw bytes of a located contiguous tensor, for tests
// that compare or rewrite tensors byte for byte.
func TensorBytes(t *formats.Tensor) ([]byte, error) {
	f, err := os.Open(t.File.Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, t.Length())
	if _, err := f.ReadAt(b, t.Offset); err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", t.File.Path, t.Name, err)
	}
	return b, nil
}
