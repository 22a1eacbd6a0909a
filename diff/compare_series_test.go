package diff

import (
	"context"
	"errors"
	"io/fs"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
	"github.com/ckpt-tool/ckpt/internal/synth"
	"github.com/ckpt-tool/ckpt/internal/testenv"
)

// writeSeriesRun writes a generated run (tiny, two shards, ending in NaN
// checkpoints) and returns its checkpoint directories in order.
func writeSeriesRun(t *testing.T, checkpoints int) []string {
	t.Helper()
	dir := t.TempDir()
	o := synth.RunOptions{Seed: 3, Shards: 2, Checkpoints: checkpoints}
	if checkpoints < 14 {
		o.JumpStep, o.NaNStep = 150, (checkpoints-1)*100+50 // the last checkpoint is NaN
	}
	if _, err := synth.WriteRun(dir, o); err != nil {
		t.Fatal(err)
	}
	truth, err := o.Truth()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range truth.Dirs {
		out = append(out, filepath.Join(dir, d))
	}
	return out
}

// copyDir copies a checkpoint directory's files (byte-identical, other inodes).
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	des, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(from, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, de.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// checkSeries compares CompareSeries with pairwise ComparePaths, exactly.
func checkSeries(t *testing.T, paths []string, opts Options) []*Result {
	t.Helper()
	got, err := CompareSeries(context.Background(), paths, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(paths)-1 {
		t.Fatalf("%d results for %d checkpoints", len(got), len(paths))
	}
	for i := range got {
		want, err := ComparePaths(context.Background(), paths[i], paths[i+1], opts)
		if err != nil {
			t.Fatal(err)
		}
		want.Work = got[i].Work // the series shares reads between pairs
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("pair %d (%s → %s), chunk %d, workers %d: series result differs from Compare\nseries  %+v\ncompare %+v",
				i, paths[i], paths[i+1], opts.ChunkBytes, opts.Workers, got[i].Summary, want.Summary)
			for j := range min(len(got[i].Tensors), len(want.Tensors)) {
				if !reflect.DeepEqual(got[i].Tensors[j], want.Tensors[j]) {
					t.Errorf("  first differing tensor:\n  series  %+v\n  compare %+v", *got[i].Tensors[j], *want.Tensors[j])
					break
				}
			}
		}
	}
	return got
}

func TestCompareSeriesMatchesPairwiseOnGeneratedRun(t *testing.T) {
	ps := writeSeriesRun(t, 6)
	// A byte-identical copy and the same directory twice: identical intervals.
	cp := filepath.Join(t.TempDir(), "checkpoint-copy")
	copyDir(t, ps[2], cp)
	paths := []string{ps[0], ps[1], ps[2], cp, ps[3], ps[3], ps[4], ps[5]}
	for _, chunk := range []int{0, 256, 1000} {
		for _, workers := range []int{1, 3} {
			res := checkSeries(t, paths, Options{ChunkBytes: chunk, Workers: workers})
			// The run really holds what the test claims to cover.
			if s := res[2].Summary; s.Identical != s.Tensors || s.Tensors == 0 {
				t.Errorf("copy interval: %+v", s)
			}
			if s := res[4].Summary; s.Identical != s.Tensors {
				t.Errorf("self interval: %+v", s)
			}
			if s := res[0].Summary; s.Changed == 0 {
				t.Errorf("first interval changed nothing: %+v", s)
			}
			if s := res[len(res)-1].Summary; s.Appeared == 0 {
				t.Errorf("NaN interval: no value became non-finite: %+v", s)
			}
		}
	}
}

func TestCompareSeriesWorkerCountIndependent(t *testing.T) {
	ps := writeSeriesRun(t, 5)
	var first []*Result
	for _, workers := range []int{1, 2, 7} {
		got, err := CompareSeries(context.Background(), ps, Options{ChunkBytes: 200, Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = got
			continue
		}
		if !reflect.DeepEqual(got, first) {
			t.Errorf("workers %d: results differ from workers 1", workers)
		}
	}
}

// TestCompareSeriesDifferingTensorSets runs a series whose tensor sets, shapes
// and dtypes change from one checkpoint to the next, with a NaN checkpoint, a
// truncated file and identical neighbours.
func TestCompareSeriesDifferingTensorSets(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	dir := t.TempDir()
	base := normals(r, 600, 1)
	moved := func(s float64) []float64 {
		out := make([]float64, len(base))
		for i, v := range base {
			out[i] = v + s*r.NormFloat64()
		}
		return out
	}
	nan := make([]float64, 600)
	for i := range nan {
		nan[i] = math.NaN()
	}
	frozen := f(formats.F32, "model.embed.weight", []uint64{10, 30}, base[:300])
	p := func(n string) string { return filepath.Join(dir, n+".safetensors") }
	writeST(t, p("c0"), frozen,
		f(formats.BF16, "model.layers.0.w", []uint64{600}, base),
		f(formats.F32, "model.layers.1.w", []uint64{20, 30}, base),
		f(formats.F32, "model.layers.2.w", []uint64{600}, base))
	writeST(t, p("c1"), frozen, // layers.0 becomes F32 (other chunking), layers.2 goes away, layers.3 comes
		f(formats.F32, "model.layers.0.w", []uint64{600}, moved(0.01)),
		f(formats.F32, "model.layers.1.w", []uint64{20, 30}, moved(0.01)),
		f(formats.F32, "model.layers.3.w", []uint64{300}, base[:300]))
	writeST(t, p("c2"), frozen, // layers.1 changes shape
		f(formats.F32, "model.layers.0.w", []uint64{600}, moved(0.02)),
		f(formats.F32, "model.layers.1.w", []uint64{30, 20}, moved(0.02)),
		f(formats.F32, "model.layers.3.w", []uint64{300}, base[:300]))
	copyDir(t, dir, filepath.Join(dir, "copy")) // c2 again, byte for byte
	writeST(t, p("c3"), frozen,
		f(formats.F32, "model.layers.0.w", []uint64{600}, nan),
		f(formats.F32, "model.layers.1.w", []uint64{30, 20}, moved(0.5)),
		f(formats.F32, "model.layers.3.w", []uint64{300}, moved(0.1)[:300]))
	writeST(t, p("c4"), frozen,
		f(formats.F32, "model.layers.0.w", []uint64{600}, moved(0.1)),
		f(formats.F32, "model.layers.1.w", []uint64{30, 20}, moved(0.5)),
		f(formats.F32, "model.layers.3.w", []uint64{300}, moved(0.1)[:300]))
	// c4 cut inside its last tensor.
	fi, err := os.Stat(p("c4"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p("c4"), fi.Size()-100); err != nil {
		t.Fatal(err)
	}
	writeST(t, p("c5"), frozen,
		f(formats.F32, "model.layers.0.w", []uint64{600}, moved(0.1)),
		f(formats.F32, "model.layers.1.w", []uint64{30, 20}, moved(0.6)),
		f(formats.F32, "model.layers.3.w", []uint64{300}, moved(0.2)[:300]))
	paths := []string{p("c0"), p("c1"), p("c2"), filepath.Join(dir, "copy", "c2.safetensors"), p("c3"), p("c4"), p("c5")}
	for _, chunk := range []int{0, 64, 500} {
		for _, workers := range []int{1, 4} {
			res := checkSeries(t, paths, Options{ChunkBytes: chunk, Workers: workers})
			s := []Summary{res[0].Summary, res[1].Summary, res[2].Summary, res[3].Summary, res[4].Summary}
			if s[0].DTypeChanged != 1 || s[0].OnlyA != 1 || s[0].OnlyB != 1 || s[1].ShapeChanged != 1 ||
				s[2].Identical != s[2].Tensors || s[3].Appeared != 600 || res[4].Summary.Unreadable == 0 {
				t.Errorf("the series does not hold the cases it should: %+v", s)
			}
		}
	}
}

// countingSource counts the bytes read through it into its file's total.
type countingSource struct {
	formats.Source
	mu    *sync.Mutex
	count map[string]int64
}

func (c countingSource) ReadAt(b []byte, off int64) (int, error) {
	n, err := c.Source.ReadAt(b, off)
	c.mu.Lock()
	c.count[c.Source.Path()] += int64(n)
	c.mu.Unlock()
	return n, err
}

// countReads makes every byte source count what is read, per path.
func countReads(t *testing.T) (count map[string]int64, reset func()) {
	var mu sync.Mutex
	count = map[string]int64{}
	restore := formats.SetSourceOpener(func(path string, mode formats.SourceMode) (formats.Source, error) {
		src, err := formats.DefaultOpenSource(path, formats.Pread)
		if err != nil {
			return nil, err
		}
		return countingSource{Source: src, mu: &mu, count: count}, nil
	})
	t.Cleanup(restore)
	return count, func() {
		mu.Lock()
		clear(count)
		mu.Unlock()
	}
}

func TestCompareSeriesReadsEachCheckpointOnce(t *testing.T) {
	ps := writeSeriesRun(t, 5)
	// Tensor data bytes of each file, from the headers.
	data := map[string]int64{}
	for _, p := range ps {
		c, err := formats.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, tn := range c.Tensors {
			data[tn.File.Path] += tn.Length()
		}
	}
	if len(data) != 2*len(ps) {
		t.Fatalf("%d weight files, want %d", len(data), 2*len(ps))
	}
	count, reset := countReads(t)
	opts := Options{ChunkBytes: 512, Workers: 2}
	if _, err := CompareSeries(context.Background(), ps, opts); err != nil {
		t.Fatal(err)
	}
	for path, want := range data {
		if got := count[path]; got != want {
			t.Errorf("series read %d bytes of %s, want its %d bytes of tensor data once", got, path, want)
		}
	}
	// Pairwise comparison, for contrast, reads the middle checkpoints twice.
	reset()
	for i := 1; i < len(ps); i++ {
		if _, err := ComparePaths(context.Background(), ps[i-1], ps[i], opts); err != nil {
			t.Fatal(err)
		}
	}
	twice := 0
	for path, want := range data {
		if count[path] == 2*want {
			twice++
		}
	}
	if twice != 2*(len(ps)-2) {
		t.Errorf("pairwise read %d files twice, want %d (the test would not see a second read)", twice, 2*(len(ps)-2))
	}
}

// failingSource fails every read past offset from with EIO.
type failingSource struct {
	formats.Source
	from int64
}

func (f failingSource) ReadAt(b []byte, off int64) (int, error) {
	if off+int64(len(b)) > f.from {
		return 0, &os.PathError{Op: "read", Path: f.Path(), Err: syscall.EIO}
	}
	return f.Source.ReadAt(b, off)
}

func TestCompareSeriesReadErrorsMatchPairwise(t *testing.T) {
	ps := writeSeriesRun(t, 5)
	bad := filepath.Base(ps[2])
	restore := formats.SetSourceOpener(func(path string, mode formats.SourceMode) (formats.Source, error) {
		src, err := formats.DefaultOpenSource(path, formats.Pread)
		if err != nil || !strings.Contains(path, bad) || !strings.Contains(path, "00001-of") {
			return src, err
		}
		return failingSource{Source: src, from: 4096}, nil
	})
	t.Cleanup(restore)
	res := checkSeries(t, ps, Options{ChunkBytes: 300, Workers: 2})
	if res[1].Summary.Unreadable == 0 || res[2].Summary.Unreadable == 0 || res[0].Summary.Unreadable != 0 {
		t.Errorf("unreadable counts %d %d %d", res[0].Summary.Unreadable, res[1].Summary.Unreadable, res[2].Summary.Unreadable)
	}
}

func TestCompareSeriesCancelled(t *testing.T) {
	ps := writeSeriesRun(t, 4)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := CompareSeries(ctx, ps, Options{ChunkBytes: 64}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestCompareSeriesMissingCheckpoint(t *testing.T) {
	ps := writeSeriesRun(t, 3)
	missing := filepath.Join(t.TempDir(), "nope")
	_, err := CompareSeries(context.Background(), []string{ps[0], missing, ps[1]}, Options{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a missing checkpoint: %v", err)
	}
}

// TestBisectReadsEachCheckpointOnceForDrift counts the bytes bisect reads
// from every weight file: the drift timeline reads each checkpoint of its
// series once, and the checkpoints the search scanned once more (their scans
// come first: they decide where the drift timeline ends).
func TestBisectReadsEachCheckpointOnceForDrift(t *testing.T) {
	ps := writeSeriesRun(t, 9)
	es, err := FromPaths(ps)
	if err != nil {
		t.Fatal(err)
	}
	data := map[string]map[string]int64{} // checkpoint → file → bytes
	for _, p := range ps {
		c, err := formats.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		data[p] = map[string]int64{}
		for _, tn := range c.Tensors {
			data[p][tn.File.Path] += tn.Length()
		}
	}
	count, _ := countReads(t)
	rep, err := Bisect(context.Background(), es, BisectOptions{Scan: inspect.Options{Workers: 2}, Diff: Options{Workers: 2, ChunkBytes: 4096}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.FirstUnhealthy == nil || len(rep.Drift) < 3 {
		t.Fatalf("the run should end unhealthy after a drift timeline: %+v", rep)
	}
	scanned := map[string]bool{}
	for _, r := range rep.Scanned {
		scanned[r.Path] = true
	}
	inDrift := map[string]bool{}
	for _, iv := range rep.Drift {
		inDrift[iv.FromPath], inDrift[iv.ToPath] = true, true
	}
	for _, p := range ps {
		times := int64(0)
		if scanned[p] {
			times++
		}
		if inDrift[p] {
			times++
		}
		for path, n := range data[p] {
			if got := count[path]; got != times*n {
				t.Errorf("%s: %d bytes read, want %d × %d (scanned %v, in the drift timeline %v)", path, got, times, n, scanned[p], inDrift[p])
			}
		}
	}
}

// The drift of a series is the weights': the training state beside them
// (optimizer.pt, read with the weights) is left out of the comparison, while
// a plain diff of the two directories compares it too.
func TestCompareSeriesLeavesTrainingStateOut(t *testing.T) {
	src := filepath.Join(testenv.RealdataTorch(t), "Sujay510__MiniLLM-Architecture")
	var dirs []string
	for _, n := range []string{"checkpoint-1", "checkpoint-2"} {
		d := filepath.Join(t.TempDir(), n)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"model.pt", "optimizer.pt"} {
			b, err := os.ReadFile(filepath.Join(src, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		dirs = append(dirs, d)
	}
	res, err := CompareSeries(context.Background(), dirs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	whole, err := ComparePaths(context.Background(), dirs[0], dirs[1], Options{})
	if err != nil {
		t.Fatal(err)
	}
	state := func(r *Result) (n int) {
		for _, d := range r.Tensors {
			if strings.HasPrefix(d.Name, "state.") {
				n++
			}
		}
		return n
	}
	if len(res) != 1 || state(res[0]) != 0 || len(res[0].Tensors) == 0 {
		t.Errorf("the series compares %d optimizer tensors (of %d)", state(res[0]), len(res[0].Tensors))
	}
	if state(whole) == 0 {
		t.Error("diff of the two directories does not compare their optimizer state")
	}
}
