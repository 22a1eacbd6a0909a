package repair

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ckpt-tool/ckpt/formats"
)

// Report is the outcome of a repair: the plan, the inputs as hashed, and the
// verification scan of the written output.
type Report struct {
	Plan         *Plan         `json:"plan"`
	Written      bool          `json:"written"` // OUT is in place, complete and verified
	Out          string        `json:"out"`
	Inputs       []InputFile   `json:"inputs"`
	Verification *Verification `json:"verification"` // nil when nothing was written
	Timings      Timings       `json:"timings"`
}

// Timings says where the time of a repair went.
type Timings struct {
	ScanSeconds  float64 `json:"scan_seconds"`  // scanning BAD and GOOD (the plan)
	WriteSeconds float64 `json:"write_seconds"` // copying, hashing and fsyncing the output
	// WriteCPUSeconds is the CPU time (all threads, user and system) of the
	// write phase: on a busy machine it, not the wall time, says what the
	// phase costs.
	WriteCPUSeconds float64 `json:"write_cpu_seconds"`
	VerifySeconds   float64 `json:"verify_seconds"` // re-reading and scanning the output
	BytesWritten    int64   `json:"bytes_written"`  // bytes of the written weight files
}

// Run plans and executes a repair.
func Run(ctx context.Context, opts Options) (*Report, error) {
	p, err := NewPlan(ctx, opts)
	if err != nil {
		return nil, err
	}
	return p.Execute(ctx)
}

// Execute writes the planned output into a temporary directory beside OUT,
// fsyncs it, re-reads and scans it, and renames it into place only when it is
// healthy and matches the plan. On any failure the temporary output is removed
// and OUT is left as it was. ErrUnhealthy means the result would not be
// healthy (nothing was written); the report then says why.
func (p *Plan) Execute(ctx context.Context) (*Report, error) {
	rep := &Report{Plan: p, Out: p.Out, Inputs: []InputFile{}}
	rep.Timings.ScanSeconds = p.scanTime.Seconds()
	if !p.Healthy {
		return rep, errAt(ErrUnhealthy, p.Out, "", "%s; nothing was written", joinCapped(p.Unhealthy, 5))
	}
	tmpDir, tmpOut, err := p.target.makeTemp()
	if err != nil {
		return rep, fmt.Errorf("creating the temporary output beside %s: %w", p.Out, err)
	}
	committed := false
	defer func() {
		if !committed {
			os.RemoveAll(tmpDir)
		}
	}()
	if err := p.checkSpace(tmpDir); err != nil {
		return rep, err
	}
	start, cpu := time.Now(), cpuTime()
	w := newWriter(ctx, p, tmpOut)
	inputs, err := w.writeAll()
	if err != nil {
		if errors.Is(err, ErrUnhealthy) || errors.Is(err, ErrInputChanged) || errors.Is(err, context.Canceled) {
			return rep, err
		}
		return rep, fmt.Errorf("writing the repaired checkpoint failed, so nothing was written to %s and the partial output was removed: %w", p.Out, err)
	}
	rep.Inputs = inputs
	rep.Timings.WriteSeconds = time.Since(start).Seconds()
	rep.Timings.WriteCPUSeconds = (cpuTime() - cpu).Seconds()
	rep.Timings.BytesWritten = w.written
	start = time.Now()
	v, err := p.verify(ctx, tmpOut, inputs)
	rep.Timings.VerifySeconds = time.Since(start).Seconds()
	if err != nil {
		return rep, err
	}
	rep.Verification = v
	if !v.Healthy {
		var why []string
		for _, f := range v.Findings {
			if f.Severity == string(formats.SevError) {
				why = append(why, f.Message)
			}
		}
		return rep, errAt(ErrUnhealthy, p.Out, "", "the written result does not scan healthy (%s); nothing was written", joinCapped(why, 5))
	}
	if err := p.target.commit(tmpDir, tmpOut, p.opts.Force, p.opts.hooks); err != nil {
		return rep, fmt.Errorf("moving the verified output into place: %w", err)
	}
	committed = true
	rep.Written = true
	return rep, nil
}

// checkSpace refuses to start when the output's file system cannot hold it.
func (p *Plan) checkSpace(dir string) error {
	if p.opts.hooks != nil && p.opts.hooks.skipSpaceCheck {
		return nil
	}
	need := p.DataBytes() + int64(len(p.Files))*(64<<10)
	for _, name := range p.Copy {
		if st, err := formats.FSFor(p.bad.Dir).Stat(formats.JoinPath(p.bad.Dir, name)); err == nil {
			need += st.Size()
		}
	}
	if free := freeBytes(dir); free >= 0 && free < need {
		return errAt(ErrNoSpace, p.Out, "", "the output needs about %s but its file system has %s free; nothing was written",
			formats.HumanBytes(need), formats.HumanBytes(free))
	}
	return nil
}

// writer copies the planned tensors into the temporary output.
type writer struct {
	ctx      context.Context
	p        *Plan
	out      string // the temporary output: a directory, or the single file
	buf      []byte // one chunk, when bytes pass through this process
	gbuf     []byte // element merges: GOOD's chunk
	inputs   map[string]*input
	hash     *hasher
	kernel   bool // copy_file_range works between these files (until it does not)
	pending  []*pendingFile
	dirs     []string // directories created in the output, to fsync
	progress func(int64)
	written  int64
	fileEnd  int64 // bytes written so far to the file being written
}

// pendingFile is a written weight file whose digest slots are not filled yet.
type pendingFile struct {
	f     *outFile
	fp    *FilePlan
	slots []int
}

func newWriter(ctx context.Context, p *Plan, out string) *writer {
	return &writer{ctx: ctx, p: p, out: out, inputs: map[string]*input{},
		kernel:   p.opts.hooks == nil || !p.opts.hooks.buffered,
		progress: p.opts.progress(PhaseWrite, p.DataBytes())}
}

// outputPath is where an output weight file is written.
func (w *writer) outputPath(fp *FilePlan) string {
	if !w.p.target.dir {
		return w.out
	}
	return filepath.Join(w.out, filepath.FromSlash(fp.Name))
}

// inputRef is an input file of the provenance list and the path it was opened by.
type inputRef struct {
	path   string
	weight bool // a weight file (hashed while copying), else an index (hashed whole)
}

// inputList is every input file the provenance names, in order: BAD's weight
// files and index, then the GOOD files that supply bytes and GOOD's index.
// BAD's files and the indexes carry a whole-file digest.
func (w *writer) inputList() ([]InputFile, []inputRef) {
	p := w.p
	var list []InputFile
	var refs []inputRef
	add := func(role, path string, weight bool) {
		list = append(list, InputFile{Role: role, Path: absOr(path), Bytes: p.stamps[path].size, digest: role == "bad" || !weight})
		refs = append(refs, inputRef{path, weight})
	}
	for _, f := range p.bad.Files {
		add("bad", f.Path, true)
	}
	if p.bad.Index != nil {
		add("bad", p.bad.Index.Path, false)
	}
	used := map[string]bool{}
	for _, tp := range p.Tensors {
		if tp.good != nil && tp.From != FromBad {
			used[tp.good.File.Path] = true
		}
	}
	for _, f := range p.good.Files {
		if used[f.Path] {
			add("good", f.Path, true)
		}
	}
	if p.good.Index != nil && len(used) > 0 {
		add("good", p.good.Index.Path, false)
	}
	return list, refs
}

// slotValues are the digests of one output file's provenance entry, in the
// order of its slots: the inputs' whole-file digests, then those of the
// tensors taken from GOOD.
func slotValues(fp *FilePlan, list []InputFile) []string {
	var out []string
	for _, in := range list {
		if in.digest {
			out = append(out, in.SHA256)
		}
	}
	for _, tp := range fp.tensors {
		if tp.From != FromBad {
			out = append(out, tp.SHA256)
		}
	}
	return out
}

func (w *writer) close() {
	if w.hash != nil {
		w.hash.abort()
	}
	for _, in := range w.inputs {
		in.f.Close()
	}
	for _, pf := range w.pending {
		pf.f.f.Close()
	}
}

// writeAll writes every output file and returns the inputs with their digests.
func (w *writer) writeAll() ([]InputFile, error) {
	defer w.close()
	chunk := w.p.opts.ChunkBytes
	w.buf = make([]byte, chunk)
	if w.p.Elements {
		w.gbuf = make([]byte, chunk)
	}
	if w.p.target.dir {
		w.dirs = append(w.dirs, w.out)
	} else {
		w.dirs = append(w.dirs, filepath.Dir(w.out))
	}
	// Hash BAD's files whole, the bytes of every tensor kept from BAD and of
	// every tensor taken from GOOD, on three goroutines while the copy runs
	// (an element merge hashes the bytes it writes).
	list, refs := w.inputList()
	digests := make([]string, len(list))
	var badJobs, keptJobs, goodJobs []hashJob
	for i, ref := range refs {
		if !ref.weight || list[i].Role != "bad" {
			continue
		}
		in, err := w.input(ref.path)
		if err != nil {
			return nil, err
		}
		badJobs = append(badJobs, hashJob{in: in, off: 0, n: in.size, dst: &digests[i]})
	}
	for _, tp := range w.p.Tensors {
		tp.written = ""
		src, jobs := tp.bad, &keptJobs
		switch {
		case tp.From == FromGood:
			src, jobs = tp.good, &goodJobs
		case tp.From == FromElements && unitBytes(tp.DType) != 0:
			continue // merge hashes what it writes
		}
		in, err := w.input(src.File.Path)
		if err != nil {
			return nil, err
		}
		job := hashJob{in: in, off: src.Offset, n: tp.Bytes, dst: &tp.written}
		if !src.Contiguous() {
			job.view = src
		}
		*jobs = append(*jobs, job)
	}
	w.hash = startHashing(chunk, badJobs, keptJobs, goodJobs)
	for _, fp := range w.p.Files {
		if err := w.writeFile(fp, list); err != nil {
			return nil, err
		}
	}
	if err := w.hash.wait(); err != nil {
		return nil, err
	}
	for _, tp := range w.p.Tensors {
		if tp.From != FromBad {
			tp.SHA256 = tp.written
		}
	}
	for i, ref := range refs {
		switch {
		case !ref.weight:
			h, err := hashWhole(list[i].Role, ref.path)
			if err != nil {
				return nil, err
			}
			if h.Bytes != list[i].Bytes {
				return nil, errAt(ErrInputChanged, ref.path, "", "the file changed while the repair was running; nothing was written, run the repair again")
			}
			list[i].SHA256 = h.SHA256
		case list[i].digest:
			list[i].SHA256 = digests[i]
		}
	}
	for path := range w.p.stamps {
		if err := w.p.checkStamp(path); err != nil {
			return nil, err
		}
	}
	// Fill the digest slots of every header, then make each file durable.
	for _, pf := range w.pending {
		vals := slotValues(pf.fp, list)
		for j, off := range pf.slots {
			if _, err := pf.f.WriteAt([]byte(vals[j]), 8+int64(off)); err != nil {
				return nil, err
			}
		}
	}
	for len(w.pending) > 0 {
		pf := w.pending[0]
		w.pending = w.pending[1:]
		if err := pf.f.syncClose(); err != nil {
			return nil, err
		}
	}
	if w.p.target.dir {
		for _, name := range w.p.Copy {
			if err := copyFileOut(formats.JoinPath(w.p.bad.Dir, name), filepath.Join(w.out, name), w.p.opts.hooks, w.buf); err != nil {
				return nil, fmt.Errorf("copying %s: %w", name, err)
			}
		}
		if err := w.writeIndex(); err != nil { // last, as the design asks
			return nil, err
		}
	}
	for i := len(w.dirs) - 1; i >= 0; i-- {
		if err := syncDirOut(w.dirs[i], w.p.opts.hooks); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// input opens (once) an input file.
func (w *writer) input(path string) (*input, error) {
	if in, ok := w.inputs[path]; ok {
		return in, nil
	}
	in, err := openInput(path, w.p)
	if err != nil {
		return nil, err
	}
	w.inputs[path] = in
	return in, nil
}

// writeFile streams one output weight file: BAD's tensors, dtypes and shapes,
// BAD's metadata plus the provenance entry. formats.NewWriter writes the
// header; the tensor data follow in its order, copied by the kernel where it
// can (copy_file_range), else through one buffer.
func (w *writer) writeFile(fp *FilePlan, list []InputFile) error {
	path := w.outputPath(fp)
	if dir := filepath.Dir(path); dir != filepath.Dir(w.dirs[0]) && dir != w.dirs[0] {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		w.dirs = append(w.dirs, dir)
	}
	specs := make([]formats.TensorSpec, len(fp.tensors))
	byName := make(map[string]*TensorPlan, len(fp.tensors))
	for i, tp := range fp.tensors {
		specs[i] = formats.TensorSpec{Name: tp.Name, DType: tp.DType, Shape: tp.Shape}
		byName[tp.Name] = tp
	}
	md := func(fill string) map[string]string { return metadataFor(fp, w.p.provenance(fp, list, fill)) }
	sh, err := encodeWithSlots(formats.PlanOrder(specs), md, len(slotValues(fp, list)))
	if err != nil {
		return err
	}
	out, err := createOut(path, w.p.opts.hooks)
	if err != nil {
		return err
	}
	w.pending = append(w.pending, &pendingFile{f: out, fp: fp, slots: sh.slots})
	fw, err := formats.NewWriter(out, specs, md(strings.Repeat("0", digestLen)))
	if err != nil {
		return err
	}
	start := 8 + int64(len(sh.text))
	w.fileEnd = start
	if pos, err := out.f.Seek(0, io.SeekCurrent); err != nil || pos != start {
		return fmt.Errorf("internal error: %s: the header written is not the header planned", path)
	}
	for _, s := range fw.Order() {
		tp := byName[s.Name]
		if n, err := s.ByteLen(); err != nil || int64(n) != tp.Bytes {
			return fmt.Errorf("internal error: tensor %q: planned %d bytes, its dtype and shape make %d", s.Name, tp.Bytes, n)
		}
		if err := w.copyTensor(out, tp); err != nil {
			return err
		}
	}
	end := start + int64(fw.DataLen())
	if pos, err := out.f.Seek(0, io.SeekCurrent); err != nil || pos != end || w.fileEnd != end {
		return fmt.Errorf("internal error: %s: wrote up to byte %d, the header declares %d", path, pos, end)
	}
	out.wrote(end, true)
	w.written += end
	return nil
}

func (w *writer) copyTensor(dst *outFile, tp *TensorPlan) error {
	switch tp.From {
	case FromGood:
		return w.copyRange(dst, "good", tp.good)
	case FromElements:
		return w.merge(dst, tp)
	}
	return w.copyRange(dst, "bad", tp.bad)
}

// copyRange copies one tensor's bytes from its input, a chunk at a time.
func (w *writer) copyRange(dst *outFile, role string, t *formats.Tensor) error {
	in, err := w.input(t.File.Path)
	if err != nil {
		return err
	}
	if !t.Contiguous() {
		return w.copyView(dst, role, in, t)
	}
	chunk := int64(len(w.buf))
	for off := int64(0); off < t.Length(); off += chunk {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		n := min(chunk, t.Length()-off)
		if w.kernel {
			ok, err := kernelCopy(dst, in, t.Offset+off, n)
			if err != nil {
				return fmt.Errorf("copying tensor %q from %s: %w", t.Name, role, err)
			}
			if ok {
				w.advance(dst, n)
				continue
			}
			w.kernel = false
		}
		b := w.buf[:n]
		if err := in.readAt(b, t.Offset+off); err != nil {
			return fmt.Errorf("reading tensor %q from %s: %w", t.Name, role, err)
		}
		if _, err := dst.Write(b); err != nil {
			return err
		}
		w.advance(dst, n)
	}
	return nil
}

// copyView writes a PyTorch view's elements in C order (read through its
// strides), a chunk at a time: the contiguous tensor safetensors holds.
func (w *writer) copyView(dst *outFile, role string, in *input, t *formats.Tensor) error {
	v := newViewSource(in, t)
	n := dataBytes(t)
	chunk := int64(len(w.buf))
	for off := int64(0); off < n; off += chunk {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		b := w.buf[:min(chunk, n-off)]
		if err := v.read(b); err != nil {
			return fmt.Errorf("reading tensor %q from %s: %w", t.Name, role, err)
		}
		if _, err := dst.Write(b); err != nil {
			return err
		}
		w.advance(dst, int64(len(b)))
	}
	return nil
}

// advance accounts for n more bytes written to dst.
func (w *writer) advance(dst *outFile, n int64) {
	w.fileEnd += n
	dst.wrote(w.fileEnd, false)
	w.progress(n)
}

// merge writes BAD's bytes of tp with every non-finite element replaced by
// GOOD's element at the same position.
func (w *writer) merge(dst *outFile, tp *TensorPlan) error {
	if unitBytes(tp.DType) == 0 {
		return w.copyRange(dst, "bad", tp.bad)
	}
	bi, err := w.input(tp.bad.File.Path)
	if err != nil {
		return err
	}
	gi, err := w.input(tp.good.File.Path)
	if err != nil {
		return err
	}
	// Each side is read as written: a PyTorch view through its strides.
	readBad := func(b []byte, off int64) error { return bi.readAt(b, tp.bad.Offset+off) }
	readGood := func(g []byte, off int64) error { return gi.readAt(g, tp.good.Offset+off) }
	if !tp.bad.Contiguous() {
		v := newViewSource(bi, tp.bad)
		readBad = func(b []byte, _ int64) error { return v.read(b) }
	}
	if !tp.good.Contiguous() {
		v := newViewSource(gi, tp.good)
		readGood = func(g []byte, _ int64) error { return v.read(g) }
	}
	chunk := int64(len(w.buf)) // a multiple of 8, so whole elements
	var still uint64
	tp.ElementsReplaced = 0
	d := sha256.New()
	for off := int64(0); off < tp.Bytes; off += chunk {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		n := min(chunk, tp.Bytes-off)
		b, g := w.buf[:n], w.gbuf[:n]
		if err := readBad(b, off); err != nil {
			return fmt.Errorf("reading tensor %q from bad: %w", tp.Name, err)
		}
		if err := readGood(g, off); err != nil {
			return fmt.Errorf("reading tensor %q from good: %w", tp.Name, err)
		}
		r, s := mergeElements(tp.DType, b, g)
		tp.ElementsReplaced += r
		still += s
		d.Write(b)
		if _, err := dst.Write(b); err != nil {
			return err
		}
		w.advance(dst, n)
	}
	tp.written = hex.EncodeToString(d.Sum(nil))
	if still > 0 {
		return errAt(ErrUnhealthy, w.p.Good, tp.Name, "%d of the %d non-finite values of BAD's tensor are not finite in GOOD either, so an element repair cannot cure it (use the default whole-tensor repair); nothing was written", still, tp.ElementsReplaced)
	}
	return nil
}

// writeIndex writes the sharded index: BAD's metadata with the right
// total_size, and the weight map of the files written.
func (w *writer) writeIndex() error {
	if w.p.Index == "" {
		return nil
	}
	md := map[string]any{}
	if w.p.bad.Index != nil {
		for k, v := range w.p.bad.Index.Metadata {
			md[k] = v
		}
	}
	md["total_size"] = w.p.DataBytes()
	wm := map[string]string{}
	for _, fp := range w.p.Files {
		for _, tp := range fp.tensors {
			wm[tp.Name] = fp.Name
		}
	}
	data, err := json.MarshalIndent(struct {
		Metadata  map[string]any    `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}{md, wm}, "", "  ")
	if err != nil {
		return err
	}
	out, err := createOut(filepath.Join(w.out, w.p.Index), w.p.opts.hooks)
	if err != nil {
		return err
	}
	if _, err := out.Write(append(data, '\n')); err != nil {
		out.f.Close()
		return err
	}
	return out.syncClose()
}
