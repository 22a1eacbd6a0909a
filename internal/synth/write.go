package synth

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/ckpt-tool/ckpt/formats"
)

// Options say what WriteCheckpoint makes.
type Options struct {
	Arch      Arch
	DType     formats.DType // BF16 when empty
	Seed      int64
	Shards    int     // 0 or 1: a single model.safetensors; N > 1: N shards and an index
	Scale     float64 // multiplies every value (0 means 1): a finite-but-exploded checkpoint
	Overwrite bool    // replace existing weight files in the directory
}

func (o *Options) fill() error {
	if o.DType == "" {
		o.DType = formats.BF16
	}
	if o.Scale == 0 {
		o.Scale = 1
	}
	if err := o.Arch.Validate(); err != nil {
		return err
	}
	if !canGenerate(o.DType) {
		return fmt.Errorf("cannot generate dtype %q (use BF16, F16, F32, F64 or an 8-bit float)", o.DType)
	}
	if n := len(o.Arch.Specs(o.DType)); o.Shards > n {
		return fmt.Errorf("%d shards requested but the model has only %d tensors", o.Shards, n)
	}
	if o.Shards < 0 {
		return fmt.Errorf("negative shard count %d", o.Shards)
	}
	return nil
}

// initKind is how a tensor is initialised and perturbed.
type initKind struct {
	mean, std float64 // initial values: mean + std·N(0,1)
	ref       float64 // the scale updates are relative to
}

// kindOf: normal(0, 0.02) for matrices, ones for norms, small normal biases.
func kindOf(name string) initKind {
	switch {
	case strings.HasSuffix(name, "norm.weight"):
		return initKind{mean: 1, std: 0, ref: 1}
	case strings.HasSuffix(name, ".bias"):
		return initKind{mean: 0, std: 0.01, ref: 0.01}
	}
	return initKind{mean: 0, std: 0.02, ref: 0.02}
}

// chunkElems is the unit of generation: every chunk of every stream has its own
// seed, so values do not depend on how the writing is split.
const chunkElems = 1 << 16

// ShardName is the Hugging Face name of shard k (1-based) of n.
func ShardName(k, n int) string { return fmt.Sprintf("model-%05d-of-%05d.safetensors", k, n) }

// IndexName is the sharded index's file name.
const IndexName = "model.safetensors.index.json"

// splitShards divides specs (in state-dict order) into n contiguous, non-empty
// groups of about equal bytes.
func splitShards(specs []formats.TensorSpec, n int) [][]formats.TensorSpec {
	if n <= 1 {
		return [][]formats.TensorSpec{specs}
	}
	sizes := make([]uint64, len(specs))
	var total uint64
	for i, s := range specs {
		sizes[i], _ = s.ByteLen()
		total += sizes[i]
	}
	out := make([][]formats.TensorSpec, n)
	var cum uint64
	prev := 0
	for i, s := range specs {
		raw := int(float64(cum+sizes[i]/2) * float64(n) / float64(max(total, 1)))
		lo := max(prev, n-(len(specs)-i))
		hi := min(prev+1, n-1)
		if i == 0 {
			lo, hi = 0, 0
		}
		k := min(max(raw, lo), hi)
		out[k] = append(out[k], s)
		prev = k
		cum += sizes[i]
	}
	return out
}

// variant is one checkpoint's values: gain·(base + Σ_{j≤len(sigmas)} sigmas[j]·ref·noise_j),
// or NaN everywhere.
type variant struct {
	dir    string
	gain   float64
	sigmas []float64 // update scale of each noise stream, a prefix shared with later variants
	nan    bool
	// nanOnly, when set, names the only tensors that are NaN in a nan variant.
	nanOnly map[string]bool
}

// layout is the files of one checkpoint: shard file names and their tensors.
type layout struct {
	files []string
	specs [][]formats.TensorSpec
}

func planLayout(specs []formats.TensorSpec, shards int) layout {
	if shards <= 1 {
		return layout{files: []string{"model.safetensors"}, specs: [][]formats.TensorSpec{specs}}
	}
	groups := splitShards(specs, shards)
	l := layout{specs: groups}
	for k := range groups {
		l.files = append(l.files, ShardName(k+1, len(groups)))
	}
	return l
}

// pendingFile is a weight file being written under a temporary name
// (formats.CreateAtomic), through a buffer and the streaming writer.
type pendingFile struct {
	f  *formats.AtomicFile
	bw *bufio.Writer
	w  *formats.Writer
}

func createPending(dest string, specs []formats.TensorSpec, overwrite bool) (*pendingFile, error) {
	f, err := formats.CreateAtomic(dest, overwrite)
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	w, err := formats.NewWriter(bw, specs, map[string]string{"format": "pt"})
	if err != nil {
		f.Abort()
		return nil, err
	}
	return &pendingFile{f: f, bw: bw, w: w}, nil
}

// commit checks that every tensor byte was written and puts the file in place.
func (p *pendingFile) commit() error {
	err := p.w.Close()
	if err == nil {
		err = p.bw.Flush()
	}
	if err != nil {
		p.f.Abort()
		return err
	}
	return p.f.Commit()
}

func (p *pendingFile) abort() { p.f.Abort() }

// writeVariants writes the weights of every variant (each into its own dir, all
// with the same layout), streaming tensor by tensor and chunk by chunk: the
// running sum of the noise streams is shared, so each element costs one draw
// per stream however many variants there are.
func writeVariants(o Options, l layout, vs []variant, overwrite bool) error {
	acc := make([]float64, chunkElems)
	val := make([]float64, chunkElems)
	out := make([]byte, chunkElems*8)
	for s, specs := range l.specs {
		files := make([]*pendingFile, len(vs))
		abort := func() {
			for _, f := range files {
				if f != nil {
					f.abort()
				}
			}
		}
		for k, v := range vs {
			f, err := createPending(filepath.Join(v.dir, l.files[s]), specs, overwrite)
			if err != nil {
				abort()
				return err
			}
			files[k] = f
		}
		size := o.DType.Size()
		for _, spec := range files[0].w.Order() {
			n, _ := spec.ByteLen()
			numel := int(n) / size
			kind := kindOf(spec.Name)
			for c := 0; c*chunkElems < numel; c++ {
				m := min(chunkElems, numel-c*chunkElems)
				a, x := acc[:m], val[:m]
				if kind.std == 0 {
					for i := range a {
						a[i] = kind.mean
					}
				} else {
					fillNormal(a, streamSeed(o.Seed, spec.Name, 0, c), kind.mean, kind.std)
				}
				done := 0
				for k, v := range vs {
					for ; done < len(v.sigmas); done++ {
						if sg := v.sigmas[done]; sg != 0 {
							addNormal(a, streamSeed(o.Seed, spec.Name, done+1, c), sg*kind.ref)
						}
					}
					if v.nan && (v.nanOnly == nil || v.nanOnly[spec.Name]) {
						for i := range x {
							x[i] = math.NaN()
						}
					} else {
						for i := range x {
							x[i] = v.gain * a[i]
						}
					}
					encodeChunk(o.DType, x, out[:m*size])
					if _, err := files[k].w.Write(out[:m*size]); err != nil {
						abort()
						return fmt.Errorf("%s: %w", files[k].f.Dest(), err)
					}
				}
			}
		}
		for k, f := range files {
			if err := f.commit(); err != nil {
				files[k] = nil
				for _, g := range files[k+1:] {
					g.abort()
				}
				return err
			}
		}
	}
	return nil
}

// WriteCheckpoint writes a checkpoint directory: config.json and the weights,
// as one model.safetensors or as shards with model.safetensors.index.json
// (written last). Tensors are streamed one chunk at a time; the values depend
// only on the seed and the tensor name. dir is created if missing.
func WriteCheckpoint(dir string, o Options) error {
	if err := o.fill(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "config.json"), o.Arch.ConfigJSON(o.DType)); err != nil {
		return err
	}
	specs := o.Arch.Specs(o.DType)
	l := planLayout(specs, o.Shards)
	if err := writeSingle(o, l, dir, o.Scale, o.Overwrite); err != nil {
		return err
	}
	if len(l.files) > 1 {
		return writeIndexFor(dir, l)
	}
	return nil
}

// writeIndexFor writes the index of a sharded layout.
func writeIndexFor(dir string, l layout) error {
	wm := map[string]string{}
	var total, params uint64
	for k, specs := range l.specs {
		for _, s := range specs {
			n, _ := s.ByteLen()
			total += n
			params += n * 8 / uint64(s.DType.Bits())
			wm[s.Name] = l.files[k]
		}
	}
	meta := map[string]any{"total_parameters": params, "total_size": total}
	return WriteIndex(filepath.Join(dir, IndexName), meta, wm)
}

// WriteIndex writes a model.safetensors.index.json as transformers does (keys
// sorted, two-space indent, trailing newline), replacing any existing file.
func WriteIndex(path string, metadata map[string]any, weightMap map[string]string) error {
	doc := map[string]any{"metadata": metadata, "weight_map": weightMap}
	if metadata == nil {
		doc["metadata"] = map[string]any{}
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(path, append(data, '\n'))
}

// writeFile replaces path with data through a temporary file and a rename.
func writeFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	err = f.Chmod(0o644)
	if err == nil {
		_, err = f.Write(data)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return errors.Join(fmt.Errorf("%s: write failed", path), err)
	}
	return nil
}
