package repair

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
)

// From says where a written tensor's bytes come from.
type From string

const (
	FromBad      From = "bad"      // BAD's bytes, unchanged
	FromGood     From = "good"     // GOOD's bytes, unchanged
	FromElements From = "elements" // BAD's bytes, non-finite elements replaced by GOOD's
)

// TensorPlan is one tensor of the output: where its bytes come from and why.
type TensorPlan struct {
	Name      string        `json:"name"`
	File      string        `json:"file"` // the output file (shard name) that holds it
	DType     formats.DType `json:"dtype"`
	Shape     []uint64      `json:"shape"`
	Bytes     int64         `json:"bytes"`
	From      From          `json:"from"`
	Why       string        `json:"why,omitempty"`
	GoodFile  string        `json:"good_file,omitempty"`        // GOOD's file the bytes come from
	NonFinite uint64        `json:"nonfinite_values,omitempty"` // BAD's non-finite values in the tensor
	// ElementsReplaced is, for an element merge, how many elements were replaced
	// (known once written).
	ElementsReplaced uint64 `json:"elements_replaced,omitempty"`
	// SHA256 is, for a tensor taken from GOOD, the digest of the bytes written
	// for it: GOOD's bytes of the tensor, or for an element merge the merged
	// bytes (known once written; the verification finds them in the output).
	SHA256 string `json:"sha256,omitempty"`
	// written is the SHA-256 of the bytes written for the tensor, computed as
	// they were read from its source (BAD's bytes, GOOD's, or the merge);
	// the verification compares the output's bytes with it.
	written string

	bad  *formats.Tensor
	good *formats.Tensor
}

// FilePlan is one output weight file, named and split as in BAD.
type FilePlan struct {
	Name      string `json:"name"`
	Tensors   int    `json:"tensors"`
	FromGood  int    `json:"from_good"`
	DataBytes int64  `json:"data_bytes"`
	// Tied lists, for a file written from a PyTorch file, the tensors left out
	// because they share another tensor's bytes (tied weights), each mapped
	// to that tensor: written once, as convert writes them, and listed in the
	// file's __metadata__ under formats.TiedTensorsKey.
	Tied map[string]string `json:"tied,omitempty"`

	bad     *formats.File
	tensors []*TensorPlan
}

// Skipped is a file of BAD's directory that is not copied to the output.
type Skipped struct {
	Name string `json:"name"`
	Why  string `json:"why"`
}

// Plan is what a repair will do. NewPlan makes it without writing anything;
// Execute carries it out.
type Plan struct {
	Bad      string         `json:"bad"`
	Good     string         `json:"good"`
	Out      string         `json:"out"`
	Strategy Strategy       `json:"strategy"`
	Elements bool           `json:"elements"`
	Layout   formats.Layout `json:"layout"`
	Files    []*FilePlan    `json:"files"`
	Index    string         `json:"index,omitempty"` // name of the index file written, "" when none
	Tensors  []*TensorPlan  `json:"tensors"`
	Replaced int            `json:"replaced"` // tensors whose bytes come (wholly or partly) from GOOD
	Kept     int            `json:"kept"`     // tensors kept from BAD unchanged
	// TiedTensors counts BAD's tied tensors (PyTorch), written once: see FilePlan.Tied.
	TiedTensors int       `json:"tied_tensors,omitempty"`
	Copy        []string  `json:"copy"` // non-weight files copied from BAD's directory
	Skip        []Skipped `json:"skip"` // files of BAD's directory not copied, and why
	// Problems are BAD's format findings that are not about one tensor (index,
	// file-level); the rewrite regenerates headers and the index, and the
	// verification scan says whether they are gone.
	Problems []string `json:"problems"`
	// Healthy is the prediction from the scans of BAD and GOOD: the output will
	// scan healthy. When false, Unhealthy says why and Execute writes nothing.
	Healthy      bool            `json:"healthy"`
	Unhealthy    []string        `json:"unhealthy"`
	Warnings     []string        `json:"warnings"`
	ResumeAdvice string          `json:"resume_advice,omitempty"`
	BadSummary   inspect.Summary `json:"bad_summary"`
	GoodSummary  inspect.Summary `json:"good_summary"`

	opts     Options
	bad      *formats.Checkpoint
	good     *formats.Checkpoint
	badScan  *inspect.Result
	goodScan *inspect.Result
	target   *target
	stamps   map[string]stamp // input files as they were when planned
	scanTime time.Duration
}

// DataBytes is the tensor data the output holds.
func (p *Plan) DataBytes() int64 {
	var n int64
	for _, f := range p.Files {
		n += f.DataBytes
	}
	return n
}

// NewPlan checks the options and the output path, opens and scans BAD and
// GOOD, and decides which tensor comes from where. It writes nothing. The
// error is a *formats.Error (or wraps one of this package's sentinels) when
// the repair cannot be done as asked.
func NewPlan(ctx context.Context, opts Options) (*Plan, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	bad, err := formats.Open(opts.Bad)
	if err != nil {
		return nil, fmt.Errorf("BAD: %w", err)
	}
	good, err := formats.Open(opts.Good)
	if err != nil {
		return nil, fmt.Errorf("GOOD: %w", err)
	}
	// Training state read beside the weights is no part of a repair: the
	// output is weights for deployment.
	bad, good = bad.Weights(), good.Weights()
	if err := checkFormats(bad, good); err != nil {
		return nil, err
	}
	if err := checkLayout(bad); err != nil {
		return nil, err
	}
	if bad.Layout == formats.LayoutFile && len(bad.Files) == 1 && bad.Files[0].Format() != formats.ContainerSafetensors &&
		!strings.HasSuffix(strings.ToLower(opts.Out), ".safetensors") {
		return nil, fmt.Errorf("%w: BAD is a %s file and the repaired checkpoint is written as safetensors: OUT must end in .safetensors", ErrOptions, bad.Files[0].Format())
	}
	if err := checkGoodReadable(good); err != nil {
		return nil, err
	}
	if err := checkDistinct(bad, good); err != nil {
		return nil, err
	}
	tg, err := checkTarget(opts.Out, bad, good, opts.Force)
	if err != nil {
		return nil, err
	}
	p := &Plan{Bad: opts.Bad, Good: opts.Good, Out: opts.Out, Strategy: opts.Strategy, Elements: opts.Elements,
		Layout: bad.Layout, opts: opts, bad: bad, good: good, target: tg,
		Copy: []string{}, Skip: []Skipped{}, Problems: []string{}, Unhealthy: []string{}, Warnings: []string{}}
	if p.stamps, err = stampInputs(bad, good); err != nil {
		return nil, err
	}
	start := time.Now()
	if p.badScan, err = scan(ctx, bad, opts, PhaseScanBad); err != nil {
		return nil, fmt.Errorf("scanning BAD: %w", err)
	}
	if p.goodScan, err = scan(ctx, good, opts, PhaseScanGood); err != nil {
		return nil, fmt.Errorf("scanning GOOD: %w", err)
	}
	p.scanTime = time.Since(start)
	p.BadSummary, p.GoodSummary = p.badScan.Summary, p.goodScan.Summary
	damage := p.damage()
	if err := p.choose(damage); err != nil {
		return nil, err
	}
	p.predict(damage)
	if bad.Layout != formats.LayoutFile {
		p.planDirectory()
	}
	if tg.leftovers != nil {
		for _, l := range tg.leftovers {
			p.Warnings = append(p.Warnings, fmt.Sprintf("%s was left by an interrupted repair; it is safe to delete", l))
		}
	}
	return p, nil
}

func scan(ctx context.Context, c *formats.Checkpoint, opts Options, phase Phase) (*inspect.Result, error) {
	so := opts.Scan
	var total int64
	for _, t := range c.Tensors {
		if !t.Cut {
			total += t.Length()
		}
	}
	so.Progress = opts.progress(phase, total)
	return inspect.Scan(ctx, c, so)
}

// checkFormats refuses inputs repair cannot take tensors from as they are: a
// GGUF file (its quantized layouts cannot be carried into safetensors), a
// PyTorch file whose pickle names code (never used as a source, as convert
// refuses it), and a PyTorch file of BAD with a tensor that could not be
// located or has no safetensors dtype (it would be missing from the output).
// PyTorch weights are otherwise read like safetensors: the output is
// safetensors either way.
func checkFormats(bad, good *formats.Checkpoint) error {
	for _, c := range []*formats.Checkpoint{bad, good} {
		role := "BAD"
		if c == good {
			role = "GOOD"
		}
		for _, f := range c.Files {
			if f.Format() == formats.ContainerGGUF {
				return errAt(ErrLayoutUnreadable, f.Path, "", "is a %s file: repair reads safetensors and PyTorch weights only (convert the model again from a healthy source)", f.Format())
			}
		}
		for _, p := range c.AllProblems() {
			if errors.Is(p.Err, formats.ErrPickle) && p.Severity == formats.SevError {
				return errAt(ErrPickleCode, p.Err.File, "", "%s: %s; a file whose pickle names code is never a source of a repair", role, p.Err.Detail)
			}
		}
		if c != bad {
			continue
		}
		for _, p := range c.AllProblems() {
			if f := fileOf(c, p.Err.File); f != nil && f.Format() == formats.ContainerTorch &&
				(p.Severity == formats.SevError || errors.Is(p.Err, formats.ErrUnsupported)) {
				return errAt(ErrLayoutUnreadable, p.Err.File, p.Err.Tensor, "%s, so BAD's tensors are not all known and the output would lack some", p.Err.Detail)
			}
		}
		for _, t := range c.Tensors {
			if !t.DType.InSafetensors() {
				return errAt(ErrLayoutUnreadable, t.File.Path, t.Name, "its dtype %s has no safetensors equivalent, so the repaired checkpoint cannot hold it", t.DType)
			}
		}
	}
	return nil
}

// fileOf is c's file at path, or nil.
func fileOf(c *formats.Checkpoint, path string) *formats.File {
	for _, f := range c.Files {
		if f.Path == path {
			return f
		}
	}
	return nil
}

// checkGoodReadable refuses a GOOD from which no tensor can be read, with one
// error saying why (rather than one "not in GOOD" per tensor BAD needs).
func checkGoodReadable(c *formats.Checkpoint) error {
	if len(c.Tensors) > 0 {
		return nil
	}
	why := ""
	for _, f := range c.Files {
		if f.Err != nil {
			why = f.Err.Error()
			break
		}
	}
	for _, p := range c.Problems {
		if why == "" && p.Severity == formats.SevError {
			why = p.Err.Error()
		}
	}
	if why == "" {
		return nil // readable, just empty: the tensor checks say what is missing
	}
	return errAt(ErrGoodUnreadable, c.Path, "", "GOOD cannot be read, so no tensor can be taken from it: %s; nothing was written", why)
}

// checkLayout refuses a BAD whose layout cannot be known: a file without a
// readable header, an unreadable index, a missing or unsafe shard.
func checkLayout(c *formats.Checkpoint) error {
	for _, f := range c.Files { // safetensors or PyTorch: checkFormats ran first
		if !f.Parsed() {
			return errAt(ErrLayoutUnreadable, f.Path, "", "its header cannot be read (%v), so its tensors and layout are unknown; use GOOD itself, or a checkpoint whose headers are intact", f.Err)
		}
	}
	if c.Layout == formats.LayoutSharded && c.Index == nil {
		detail := "the index cannot be read"
		for _, p := range c.Problems {
			if p.Severity == formats.SevError {
				detail = p.Err.Error()
				break
			}
		}
		return errAt(ErrLayoutUnreadable, c.Path, "", "%s, so the shard split cannot be kept", detail)
	}
	for _, p := range c.Problems {
		if errors.Is(p.Err, formats.ErrMissingShard) || errors.Is(p.Err, formats.ErrUnsafePath) {
			return errAt(ErrLayoutUnreadable, p.Err.File, p.Err.Tensor, "%s; the tensors of that shard are unknown", p.Err.Detail)
		}
	}
	return nil
}

// checkDistinct refuses BAD and GOOD that are the same checkpoint.
func checkDistinct(bad, good *formats.Checkpoint) error {
	if same(bad.Path, good.Path) {
		return errAt(ErrSameInput, bad.Path, "", "BAD and GOOD are the same path")
	}
	for _, a := range bad.Files {
		for _, b := range good.Files {
			if same(a.Path, b.Path) {
				return errAt(ErrSameInput, a.Path, "", "this file is both BAD's and GOOD's (%s)", b.Path)
			}
		}
	}
	return nil
}

func same(a, b string) bool {
	if formats.IsRemote(a) || formats.IsRemote(b) {
		return a == b
	}
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// tensorKey identifies a tensor of a checkpoint: its file's path and its name.
type tensorKey struct{ file, name string }

// damage lists, for every tensor of BAD with an error finding (or cut short by
// the end of its file), why it is damaged. Error findings not about one of
// BAD's tensors become plan problems.
func (p *Plan) damage() map[tensorKey][]inspect.Finding {
	known := map[tensorKey]bool{}
	for _, t := range p.bad.Tensors {
		known[tensorKey{t.File.Path, t.Name}] = true
	}
	out := map[tensorKey][]inspect.Finding{}
	for _, f := range p.badScan.Findings {
		if f.Severity != string(formats.SevError) {
			continue
		}
		k := tensorKey{f.File, f.Tensor}
		if f.Tensor != "" && known[k] {
			out[k] = append(out[k], f)
			continue
		}
		p.Problems = append(p.Problems, f.Message)
	}
	for _, t := range p.bad.Tensors {
		if t.Cut {
			k := tensorKey{t.File.Path, t.Name}
			out[k] = append(out[k], inspect.Finding{Severity: "error", Check: inspect.CheckFormat, Tensor: t.Name, File: t.File.Path,
				Message: "the file ends before this tensor does"})
		}
	}
	return out
}

func describe(fs []inspect.Finding) string {
	parts := make([]string, 0, len(fs))
	for _, f := range fs {
		parts = append(parts, f.Check+": "+f.Message)
	}
	return strings.Join(parts, "; ")
}

// choose fills Files and Tensors: for every tensor of BAD, whether it is kept
// or taken from GOOD, and checks that GOOD has what is needed.
func (p *Plan) choose(damage map[tensorKey][]inspect.Finding) error {
	// Blocks holding a damaged tensor, for the layers strategy.
	blocks := map[string][]string{}
	if p.Strategy == Layers {
		for _, t := range p.bad.Tensors {
			if _, bad := damage[tensorKey{t.File.Path, t.Name}]; bad {
				if b, _, ok := formats.Layer(t.Name); ok {
					blocks[b] = append(blocks[b], t.Name)
				}
			}
		}
	}
	var mismatch []string
	var mismatchTensor string
	badStats := statsIndex(p.badScan)
	names := map[string]string{}
	for _, f := range p.bad.Files {
		name := formats.SafetensorsName(f.Name) // a PyTorch file is written as safetensors
		if p.bad.Layout == formats.LayoutFile {
			name = p.target.base // a single file is written under OUT's name
		}
		if other, dup := names[name]; dup {
			return errAt(ErrLayoutUnreadable, f.Path, "", "written as safetensors it would be %s, as %s would: rename one of them", name, other)
		}
		names[name] = f.Name
		fp := &FilePlan{Name: name, bad: f}
		for _, t := range f.Tensors() {
			if t.TiedTo != "" {
				// The same bytes as another tensor of the file: written once.
				if fp.Tied == nil {
					fp.Tied = map[string]string{}
				}
				fp.Tied[t.Name] = t.TiedTo
				p.TiedTensors++
				continue
			}
			tp := &TensorPlan{Name: t.Name, File: name, DType: t.DType, Shape: t.Shape, Bytes: dataBytes(t), From: FromBad, bad: t}
			fs, damaged := damage[tensorKey{f.Path, t.Name}]
			switch {
			case p.Strategy == All:
				tp.From, tp.Why = FromGood, "strategy all: every tensor is GOOD's"
				if damaged {
					tp.Why += " (damaged in BAD: " + describe(fs) + ")"
				}
			case damaged && p.Elements && !t.Cut:
				tp.From, tp.Why = FromElements, describe(fs)
			case damaged:
				tp.From, tp.Why = FromGood, describe(fs)
			case p.Strategy == Layers:
				if b, _, ok := formats.Layer(t.Name); ok && len(blocks[b]) > 0 {
					tp.From = FromGood
					tp.Why = fmt.Sprintf("in block %s, which holds damaged %s", b, quoteList(blocks[b]))
				}
			}
			if s := badStats[tensorKey{f.Path, t.Name}]; s != nil {
				tp.NonFinite = s.NonFinite()
			}
			if tp.From != FromBad {
				if msg := p.matchGood(tp); msg != "" {
					mismatch = append(mismatch, msg)
					if mismatchTensor == "" {
						mismatchTensor = t.Name
					}
				}
				fp.FromGood++
				p.Replaced++
			} else {
				p.Kept++
			}
			fp.Tensors++
			fp.DataBytes += tp.Bytes
			fp.tensors = append(fp.tensors, tp)
			p.Tensors = append(p.Tensors, tp)
		}
		p.Files = append(p.Files, fp)
	}
	if p.Strategy == All {
		have := map[string]bool{}
		for _, t := range p.bad.Tensors {
			have[t.Name] = true
		}
		for _, t := range p.good.Tensors {
			if !have[t.Name] && (t.TiedTo == "" || !have[t.TiedTo]) {
				mismatch = append(mismatch, fmt.Sprintf("tensor %q is in GOOD (%s) but not in BAD: a rollback in BAD's layout would drop it", t.Name, t.File.Name))
				if mismatchTensor == "" {
					mismatchTensor = t.Name
				}
			}
		}
	}
	if len(mismatch) > 0 {
		sort.Strings(mismatch)
		mismatch = slices.Compact(mismatch)
		return errAt(ErrIncompatible, p.Good, mismatchTensor, "GOOD cannot supply what the repair needs (%d problem(s)): %s", len(mismatch), joinCapped(mismatch, 5))
	}
	return nil
}

// matchGood finds tp in GOOD and checks dtype and shape; it returns what is
// wrong, or "".
func (p *Plan) matchGood(tp *TensorPlan) string {
	g := p.good.Tensor(tp.Name)
	if g == nil {
		for _, f := range p.good.Files {
			if !f.Parsed() {
				// One problem for every tensor BAD needs that this file may hold.
				return fmt.Sprintf("GOOD's file %s cannot be read (%v), so the tensors BAD needs that are not in GOOD's other files cannot be taken from it", f.Path, f.Err)
			}
		}
		return fmt.Sprintf("tensor %q (%s %v) is not in GOOD", tp.Name, tp.DType, tp.Shape)
	}
	if g.DType != tp.DType || !slices.Equal(g.Shape, tp.Shape) {
		return fmt.Sprintf("tensor %q differs: BAD has %s %v, GOOD has %s %v (in %s)", tp.Name, tp.DType, tp.Shape, g.DType, g.Shape, g.File.Name)
	}
	if g.Cut {
		return fmt.Sprintf("tensor %q cannot be read from GOOD: its file %s ends before the tensor does", tp.Name, g.File.Path)
	}
	tp.good, tp.GoodFile = g, g.File.Name
	return ""
}

// dataBytes is the size of a tensor's elements written contiguously: its byte
// span for a safetensors tensor, numel × element size for a PyTorch view
// (whose span in its storage may be larger or smaller).
func dataBytes(t *formats.Tensor) int64 {
	if t.Contiguous() {
		return t.Length()
	}
	return int64(t.Numel()) * int64(t.DType.Size())
}

// statsIndex maps every scanned tensor of r to its statistics.
func statsIndex(r *inspect.Result) map[tensorKey]*inspect.TensorStats {
	m := make(map[tensorKey]*inspect.TensorStats, len(r.Tensors))
	for _, s := range r.Tensors {
		k := tensorKey{s.File, s.Name}
		if _, dup := m[k]; !dup {
			m[k] = s
		}
	}
	return m
}

// predict says whether the output will scan healthy: every tensor kept from
// BAD must be free of error findings, and so must every tensor taken from GOOD
// (for an element merge, GOOD's values replace only BAD's non-finite ones, so
// only findings other than non-finite values count; overlapping non-finite
// positions are caught while merging).
func (p *Plan) predict(damage map[tensorKey][]inspect.Finding) {
	goodFindings := map[tensorKey][]inspect.Finding{}
	for _, f := range p.goodScan.Findings {
		if f.Severity == string(formats.SevError) && f.Tensor != "" {
			k := tensorKey{f.File, f.Tensor}
			goodFindings[k] = append(goodFindings[k], f)
		}
	}
	for _, tp := range p.Tensors {
		switch tp.From {
		case FromBad:
			// Kept tensors are undamaged by construction.
		case FromGood:
			if fs := goodFindings[tensorKey{tp.good.File.Path, goodName(tp.good)}]; len(fs) > 0 {
				p.Unhealthy = append(p.Unhealthy, fmt.Sprintf("tensor %q would come from GOOD, but GOOD's copy is damaged too: %s", tp.Name, describe(fs)))
			}
		case FromElements:
			for _, f := range damage[tensorKey{tp.bad.File.Path, tp.Name}] {
				if f.Check != inspect.CheckNonFinite {
					p.Unhealthy = append(p.Unhealthy, fmt.Sprintf("tensor %q: replacing its non-finite elements does not cure %s: %s (use the default whole-tensor repair)", tp.Name, f.Check, f.Message))
				}
			}
			for _, f := range goodFindings[tensorKey{tp.good.File.Path, goodName(tp.good)}] {
				if f.Check != inspect.CheckNonFinite {
					p.Unhealthy = append(p.Unhealthy, fmt.Sprintf("tensor %q: GOOD's copy, which supplies the replaced elements, is damaged: %s: %s", tp.Name, f.Check, f.Message))
				}
			}
		}
	}
	p.Healthy = len(p.Unhealthy) == 0
	if p.Elements && p.Replaced > 0 {
		p.Warnings = append(p.Warnings, "element repair: the replaced tensors mix two training states (BAD's finite values, GOOD's values where BAD's were not finite); prefer whole tensors unless you know why")
	}
	if p.Replaced == 0 {
		p.Warnings = append(p.Warnings, "BAD has no damaged tensor: the output is BAD's weights unchanged (strategy all rolls back to GOOD's)")
	}
}

// goodName is the name GOOD's findings about t are under: a tied tensor's
// are under the tensor it is tied to (scanned once).
func goodName(t *formats.Tensor) string {
	if t.TiedTo != "" {
		return t.TiedTo
	}
	return t.Name
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return joinCapped(q, 3)
}

// joinCapped joins up to n items and says how many more there are.
func joinCapped(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, "; ")
	}
	return strings.Join(items[:n], "; ") + fmt.Sprintf("; and %d more", len(items)-n)
}

// stamp is an input file's size and modification time when the plan was made.
type stamp struct {
	size  int64
	mtime int64
}

func stampInputs(cs ...*formats.Checkpoint) (map[string]stamp, error) {
	out := map[string]stamp{}
	for _, c := range cs {
		paths := make([]string, 0, len(c.Files)+1)
		for _, f := range c.Files {
			paths = append(paths, f.Path)
		}
		if c.Index != nil {
			paths = append(paths, c.Index.Path)
		}
		for _, path := range paths {
			st, err := formats.FSFor(path).Stat(path)
			if err != nil {
				return nil, err
			}
			out[path] = stamp{st.Size(), st.ModTime().UnixNano()}
		}
	}
	return out, nil
}

// checkStamp refuses an input file that changed since it was planned.
func (p *Plan) checkStamp(path string) error {
	want, ok := p.stamps[path]
	if !ok {
		return nil
	}
	st, err := formats.FSFor(path).Stat(path)
	if err != nil {
		return err
	}
	if st.Size() != want.size || st.ModTime().UnixNano() != want.mtime {
		return errAt(ErrInputChanged, path, "", "the file changed while the repair was running (size %d → %d); nothing was written, run the repair again", want.size, st.Size())
	}
	return nil
}
