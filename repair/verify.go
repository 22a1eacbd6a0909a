package repair

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
)

// Verification is the scan of the written output, re-read from disk before it
// was moved into place. File paths in it name OUT, not the temporary location.
type Verification struct {
	Healthy  bool              `json:"healthy"`
	Summary  inspect.Summary   `json:"summary"`
	Findings []inspect.Finding `json:"findings"`
	// Matched is how many tensors, as re-read, have exactly the bytes they
	// were copied from (the same SHA-256) and the counts and extremes of
	// their source (element merges: no non-finite value left).
	Matched int `json:"matched_tensors"`
}

// verify re-opens and scans the written output at tmpOut, and checks it against
// the plan: the same files and tensors; each tensor's bytes, hashed while the
// output is re-read, equal to the bytes it was copied from (the SHA-256 of
// BAD's or GOOD's bytes as they were read, or of the merged bytes), and its
// statistics equal to its source's (counts, zeros, subnormals, min, max,
// absmax, which do not depend on how the scan splits the work); and a
// provenance entry in every file that names the inputs with their digests.
func (p *Plan) verify(ctx context.Context, tmpOut string, inputs []InputFile) (*Verification, error) {
	c, err := formats.Open(tmpOut)
	if err != nil {
		return nil, verr("", "", "the written output cannot be opened: %v", err)
	}
	rehash, err := p.hashOutput(c)
	if err != nil {
		return nil, verr("", "", "the written output cannot be re-read: %v", err)
	}
	r, err := scan(ctx, c, p.opts, PhaseVerify)
	if err != nil {
		rehash.h.abort()
		rehash.close()
		return nil, fmt.Errorf("scanning the written output: %w", err)
	}
	if err := rehash.wait(); err != nil {
		return nil, verr("", "", "the written output cannot be re-read: %v", err)
	}
	v := &Verification{Healthy: r.Healthy(), Summary: r.Summary, Findings: []inspect.Finding{}}
	for _, f := range r.Findings {
		f.File = p.outName(tmpOut, f.File)
		f.Message = strings.ReplaceAll(f.Message, tmpOut, p.Out)
		v.Findings = append(v.Findings, f)
	}
	if len(c.Files) != len(p.Files) || len(c.Tensors) != len(p.Tensors) {
		return v, verr("", "", "the written output holds %d files and %d tensors, the plan %d and %d", len(c.Files), len(c.Tensors), len(p.Files), len(p.Tensors))
	}
	got := statsIndex(r)
	bad, good := statsIndex(p.badScan), statsIndex(p.goodScan)
	for _, fp := range p.Files {
		path := tmpOut
		if p.target.dir {
			path = filepath.Join(tmpOut, filepath.FromSlash(fp.Name))
		}
		for _, tp := range fp.tensors {
			s := got[tensorKey{path, tp.Name}]
			if s == nil {
				return v, verr(fp.Name, tp.Name, "the tensor is missing from the written file")
			}
			if s.Skipped != "" {
				return v, verr(fp.Name, tp.Name, "the tensor could not be re-read: %s", s.Skipped)
			}
			if d := rehash.digests[tensorKey{path, tp.Name}]; d == "" || d != tp.written {
				return v, verr(fp.Name, tp.Name, "re-read from the written file, the tensor's bytes are not those copied from %s (SHA-256 %s, the source's %s); the output is discarded", tp.From, d, tp.written)
			}
			var want *inspect.TensorStats
			switch tp.From {
			case FromBad:
				want = bad[tensorKey{tp.bad.File.Path, tp.Name}]
			case FromGood:
				want = good[tensorKey{tp.good.File.Path, tp.Name}]
			case FromElements:
				b := bad[tensorKey{tp.bad.File.Path, tp.Name}]
				if b == nil || s.Count != b.Count || s.NonFinite() != 0 || b.NonFinite() != tp.ElementsReplaced {
					return v, verr(fp.Name, tp.Name, "after the element repair the tensor has %d values, %d of them not finite; %d elements were replaced", s.Count, s.NonFinite(), tp.ElementsReplaced)
				}
				v.Matched++
				continue
			}
			if want == nil {
				return v, verr(fp.Name, tp.Name, "internal error: the source's statistics are missing")
			}
			if d := differ(&want.Acc, &s.Acc); d != "" {
				return v, verr(fp.Name, tp.Name, "re-read from the written file, the tensor differs from its source in %s (%s); the output is discarded", tp.From, d)
			}
			v.Matched++
		}
	}
	for _, f := range c.Files {
		pr, ok, err := ReadProvenance(f.Header.Metadata)
		switch {
		case err != nil:
			return v, verr(f.Name, "", "%v", err)
		case !ok:
			return v, verr(f.Name, "", "the provenance entry is missing from the written file")
		case len(pr.Inputs) != len(inputs):
			return v, verr(f.Name, "", "the provenance entry lists %d inputs, %d were read", len(pr.Inputs), len(inputs))
		}
		for i, in := range inputs {
			got := pr.Inputs[i]
			if got.Role != in.Role || got.Path != in.Path || got.Bytes != in.Bytes || got.SHA256 != in.SHA256 {
				return v, verr(f.Name, "", "the provenance entry records input %s as %+v, it was read as %+v", in.Path, got, in)
			}
		}
		want := map[string]string{}
		for _, tp := range p.Tensors {
			if tp.From != FromBad {
				want[tp.Name] = tp.SHA256
			}
		}
		for _, r := range pr.FromGood {
			if d, ok := want[r.Name]; !ok || d != r.SHA256 || d == "" {
				return v, verr(f.Name, r.Name, "the provenance entry records GOOD's digest %q, the copy computed %q", r.SHA256, d)
			}
		}
	}
	return v, nil
}

// outputHash is the hashing of every tensor of the written output, running
// beside the verification scan.
type outputHash struct {
	h       *hasher
	files   []*os.File
	tensors []*formats.Tensor
	sums    []string             // by index in tensors
	digests map[tensorKey]string // by output file path and tensor name, once done
}

// maxOutputHashers bounds the goroutines hashing the output beside the scan.
const maxOutputHashers = 2

// hashOutput starts hashing the bytes of every tensor of the written output c
// as they are on disk, on goroutines of their own (each file's tensors in
// order on one, at most maxOutputHashers at once); wait returns the digests.
func (p *Plan) hashOutput(c *formats.Checkpoint) (*outputHash, error) {
	o := &outputHash{tensors: c.Tensors, sums: make([]string, len(c.Tensors)), digests: map[tensorKey]string{}}
	groups := make([][]hashJob, max(1, min(len(c.Files), maxOutputHashers)))
	byFile := map[*formats.File]*input{}
	group := map[*formats.File]int{}
	for i, f := range c.Files {
		fh, err := os.Open(f.Path)
		if err != nil {
			o.close()
			return nil, err
		}
		o.files = append(o.files, fh)
		byFile[f], group[f] = &input{path: f.Path, f: fh, size: f.Size}, i%len(groups)
	}
	for i, t := range c.Tensors {
		g := group[t.File]
		groups[g] = append(groups[g], hashJob{in: byFile[t.File], off: t.Offset, n: t.Length(), dst: &o.sums[i]})
	}
	o.h = startHashing(p.opts.ChunkBytes, groups...)
	return o, nil
}

// wait waits for the hashing to end, closes the files and indexes the digests.
func (o *outputHash) wait() error {
	err := o.h.wait()
	o.close()
	for i, t := range o.tensors {
		o.digests[tensorKey{t.File.Path, t.Name}] = o.sums[i]
	}
	return err
}

func (o *outputHash) close() {
	for _, f := range o.files {
		f.Close()
	}
	o.files = nil
}

// differ names the first statistic that is not identical, or "".
func differ(a, b *inspect.Acc) string {
	type pair struct {
		name string
		x, y uint64
	}
	for _, c := range []pair{{"values", a.Count, b.Count}, {"NaN count", a.NaN, b.NaN}, {"+Inf count", a.PosInf, b.PosInf},
		{"-Inf count", a.NegInf, b.NegInf}, {"zero count", a.Zeros, b.Zeros}, {"subnormal count", a.Subnormal, b.Subnormal},
		{"finite count", a.Finite, b.Finite}} {
		if c.x != c.y {
			return fmt.Sprintf("%s: %d, written %d", c.name, c.x, c.y)
		}
	}
	type fpair struct {
		name string
		x, y float64
	}
	for _, c := range []fpair{{"min", a.Min, b.Min}, {"max", a.Max, b.Max}, {"absmax", a.AbsMax, b.AbsMax}} {
		if c.x != c.y {
			return fmt.Sprintf("%s: %g, written %g", c.name, c.x, c.y)
		}
	}
	if a.FirstBad != b.FirstBad {
		return fmt.Sprintf("first non-finite index: %d, written %d", a.FirstBad, b.FirstBad)
	}
	return ""
}

func verr(file, tensor, format string, args ...any) error {
	return errAt(ErrVerify, file, tensor, format, args...)
}

// outName maps a path inside the temporary output to the same path under OUT.
func (p *Plan) outName(tmpOut, path string) string {
	if path == tmpOut {
		return p.Out
	}
	if rel, err := filepath.Rel(tmpOut, path); err == nil && filepath.IsLocal(rel) {
		return filepath.Join(p.Out, rel)
	}
	return path
}
