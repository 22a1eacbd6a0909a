// Package convert owns `ckpt convert`: a PyTorch checkpoint (a torch.save
// file or a directory of them, sharded or not) written as safetensors with the
// same tensor names and values bit for bit. Tied tensors are written once and
// listed in __metadata__; large checkpoints are cut into shards with an index
// like save_pretrained's. Every output file is written under a temporary name,
// re-read and compared byte for byte to the source, and only then renamed into
// place. A file whose pickle names code is refused: nothing here loads code.
package convert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ckpt-tool/ckpt/formats"
)

// DefaultMaxShardSize is save_pretrained's default, 5 GB.
const DefaultMaxShardSize = 5_000_000_000

// TiedKey is the __metadata__ key listing tied tensors: a JSON object mapping
// each tensor left out to the tensor whose bytes it shares.
const TiedKey = formats.TiedTensorsKey

// Options control a conversion.
type Options struct {
	MaxShardSize int64 // bytes of tensor data per shard; 0 means DefaultMaxShardSize
	Overwrite    bool  // replace existing output files
	CloneTied    bool  // write tied tensors as copies instead of once
}

// Result describes a finished conversion.
type Result struct {
	Files   []string          // written, in order (shards, then the index)
	Tensors int               // tensors written
	Bytes   int64             // bytes of tensor data written
	Tied    map[string]string // tensor left out → the tensor it is tied to
}

// ErrRefused means the input cannot be converted as it is (a pickle that names
// code, a damaged file, a tensor type safetensors lacks); the error says why.
var ErrRefused = errors.New("refused")

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, args...))
}

// Convert writes the PyTorch checkpoint at in as safetensors at out: a
// .safetensors file when out ends so (one shard only), otherwise a directory
// holding model.safetensors or shards and model.safetensors.index.json.
func Convert(in, out string, opts Options) (*Result, error) {
	if opts.MaxShardSize <= 0 {
		opts.MaxShardSize = DefaultMaxShardSize
	}
	c, err := formats.Open(in)
	if err != nil {
		return nil, err
	}
	if err := check(c); err != nil {
		return nil, err
	}
	res := &Result{Tied: map[string]string{}}
	var tensors []*formats.Tensor
	seen := map[string]bool{}
	for _, t := range c.Tensors {
		if !formats.IsWeightsFile(t.File.Name) {
			continue // training state beside the weights is not converted
		}
		if seen[t.Name] {
			return nil, refuse("%s: tensor %q appears twice", in, t.Name)
		}
		seen[t.Name] = true
		if t.TiedTo != "" && !opts.CloneTied {
			res.Tied[t.Name] = t.TiedTo
			continue
		}
		tensors = append(tensors, t)
	}
	if len(tensors) == 0 {
		return nil, refuse("%s holds no tensors to convert", in)
	}
	shards := cut(tensors, opts.MaxShardSize)
	single := strings.HasSuffix(out, ".safetensors")
	if single && len(shards) > 1 {
		return nil, refuse("%d shards are needed at a largest shard size of %d bytes, and OUT names one .safetensors file: give a directory as OUT", len(shards), opts.MaxShardSize)
	}
	if !single {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return nil, err
		}
	}
	md := map[string]string{"format": "pt"}
	if len(res.Tied) > 0 {
		b, _ := json.Marshal(res.Tied)
		md[TiedKey] = string(b)
	}
	// Write every shard under a temporary name and verify it; commit all at the end.
	var pending []*formats.AtomicFile
	defer func() {
		for _, a := range pending {
			a.Abort()
		}
	}()
	weightMap := map[string]string{}
	for i, shard := range shards {
		dest := out
		if !single {
			dest = filepath.Join(out, "model.safetensors")
			if len(shards) > 1 {
				dest = filepath.Join(out, fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(shards)))
			}
		}
		a, err := writeShard(dest, shard, md, opts.Overwrite)
		if err != nil {
			return nil, err
		}
		pending = append(pending, a)
		for _, t := range shard {
			weightMap[t.Name] = filepath.Base(dest)
			res.Bytes += t.Length()
			res.Tensors++
		}
	}
	if len(shards) > 1 {
		a, err := writeIndex(filepath.Join(out, "model.safetensors.index.json"), res.Bytes, weightMap, opts.Overwrite)
		if err != nil {
			return nil, err
		}
		pending = append(pending, a)
	}
	for len(pending) > 0 {
		a := pending[0]
		if err := a.Commit(); err != nil {
			return nil, err
		}
		res.Files = append(res.Files, a.Dest())
		pending = pending[1:]
	}
	return res, nil
}

// check refuses what cannot be converted faithfully.
func check(c *formats.Checkpoint) error {
	for _, f := range c.Files {
		if f.Format() != formats.ContainerTorch {
			return refuse("%s is already %s, not a PyTorch file", f.Path, f.Format())
		}
	}
	for _, p := range c.AllProblems() {
		switch {
		case errors.Is(p.Err, formats.ErrPickle) && p.Severity == formats.SevError:
			return refuse("%s; a file whose pickle names code is never converted", p.Err)
		case errors.Is(p.Err, formats.ErrUnsupported):
			return refuse("%s", p.Err)
		case p.Severity == formats.SevError && !errors.Is(p.Err, formats.ErrPickle):
			return refuse("%s", p.Err)
		}
	}
	return nil
}

// cut groups tensors into shards of at most max bytes (a larger tensor gets
// a shard of its own), in checkpoint order.
func cut(ts []*formats.Tensor, max int64) [][]*formats.Tensor {
	var out [][]*formats.Tensor
	var cur []*formats.Tensor
	var size int64
	for _, t := range ts {
		n := int64(t.Numel()) * int64(t.DType.Size())
		if len(cur) > 0 && size+n > max {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, t)
		size += n
	}
	return append(out, cur)
}

// writeShard writes one shard under a temporary name and verifies it.
func writeShard(dest string, ts []*formats.Tensor, md map[string]string, overwrite bool) (*formats.AtomicFile, error) {
	specs := make([]formats.TensorSpec, len(ts))
	byName := map[string]*formats.Tensor{}
	for i, t := range ts {
		specs[i] = formats.TensorSpec{Name: t.Name, DType: t.DType, Shape: t.Shape}
		byName[t.Name] = t
	}
	a, err := formats.CreateAtomic(dest, overwrite)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			a.Abort()
		}
	}()
	srcs := map[string]formats.Source{}
	defer func() {
		for _, f := range srcs {
			f.Close()
		}
	}()
	open := func(t *formats.Tensor) (formats.Source, error) {
		if f, ok := srcs[t.File.Path]; ok {
			return f, nil
		}
		f, err := formats.OpenSource(t.File.Path, formats.Pread)
		if err != nil {
			return nil, err
		}
		srcs[t.File.Path] = f
		if st, err := f.Stat(); err != nil {
			return nil, err
		} else if err := t.File.CheckUnchanged(st); err != nil {
			return nil, err
		}
		return f, nil
	}
	w, err := formats.NewWriter(a, specs, md)
	if err != nil {
		return nil, err
	}
	for _, sp := range w.Order() {
		t := byName[sp.Name]
		f, err := open(t)
		if err != nil {
			return nil, err
		}
		if err := w.WriteTensor(sp.Name, formats.NewViewReader(f, t.File.Size, t)); err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", t.File.Path, t.Name, err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if err := verify(a, byName, open); err != nil {
		return nil, err
	}
	ok = true
	return a, nil
}

// verify re-reads the written shard and compares every tensor byte for byte
// with its source.
func verify(a *formats.AtomicFile, src map[string]*formats.Tensor, open func(*formats.Tensor) (formats.Source, error)) error {
	if err := a.Sync(); err != nil {
		return err
	}
	f, err := formats.ReadFileHeader(a.Name(), filepath.Base(a.Dest()))
	if err != nil {
		return err
	}
	if f.Err != nil {
		return fmt.Errorf("verifying %s: the written file does not read back: %w", a.Dest(), f.Err)
	}
	got := f.Tensors()
	if len(got) != len(src) {
		return fmt.Errorf("verifying %s: %d tensors read back, %d written", a.Dest(), len(got), len(src))
	}
	out, err := os.Open(a.Name())
	if err != nil {
		return err
	}
	defer out.Close()
	bufA, bufB := make([]byte, 1<<20), make([]byte, 1<<20)
	for _, t := range got {
		s, ok := src[t.Name]
		if !ok || s.DType != t.DType || fmt.Sprint(s.Shape) != fmt.Sprint(t.Shape) {
			return fmt.Errorf("verifying %s: tensor %q does not match its source", a.Dest(), t.Name)
		}
		sf, err := open(s)
		if err != nil {
			return err
		}
		ra := formats.NewViewReader(sf, s.File.Size, s)
		rb := io.NewSectionReader(out, t.Offset, t.Length())
		for left := t.Length(); left > 0; {
			k := min(left, int64(len(bufA)))
			if _, err := io.ReadFull(ra, bufA[:k]); err != nil {
				return fmt.Errorf("verifying %s: reading the source of %q: %w", a.Dest(), t.Name, err)
			}
			if _, err := io.ReadFull(rb, bufB[:k]); err != nil {
				return fmt.Errorf("verifying %s: reading %q back: %w", a.Dest(), t.Name, err)
			}
			if !bytes.Equal(bufA[:k], bufB[:k]) {
				return fmt.Errorf("verifying %s: tensor %q differs from its source", a.Dest(), t.Name)
			}
			left -= k
		}
	}
	return nil
}

// writeIndex writes model.safetensors.index.json as save_pretrained does.
func writeIndex(dest string, total int64, weightMap map[string]string, overwrite bool) (*formats.AtomicFile, error) {
	names := make([]string, 0, len(weightMap))
	for n := range weightMap {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	fmt.Fprintf(&b, "{\n  \"metadata\": {\n    \"total_size\": %d\n  },\n  \"weight_map\": {\n", total)
	for i, n := range names {
		k, _ := json.Marshal(n)
		v, _ := json.Marshal(weightMap[n])
		sep := ","
		if i == len(names)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "    %s: %s%s\n", k, v, sep)
	}
	b.WriteString("  }\n}\n")
	a, err := formats.CreateAtomic(dest, overwrite)
	if err != nil {
		return nil, err
	}
	if _, err := a.Write(b.Bytes()); err != nil {
		a.Abort()
		return nil, err
	}
	return a, nil
}
