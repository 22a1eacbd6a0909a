package diff

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/formats/ggml"
	"github.com/ckpt-tool/ckpt/inspect"
	"github.com/ckpt-tool/ckpt/internal/hostile"
	"github.com/ckpt-tool/ckpt/internal/synth"
	"github.com/ckpt-tool/ckpt/internal/testenv"
)

// sameScan fails unless two scans are equal to the bit (%+v prints each float
// in its shortest exact form, and -0 as -0).
func sameScan(t *testing.T, what string, got, want *inspect.Result) {
	t.Helper()
	if len(got.Tensors) != len(want.Tensors) {
		t.Fatalf("%s: %d tensors scanned, want %d", what, len(got.Tensors), len(want.Tensors))
	}
	for i := range got.Tensors {
		if g, w := fmt.Sprintf("%+v", *got.Tensors[i]), fmt.Sprintf("%+v", *want.Tensors[i]); g != w {
			t.Fatalf("%s: scan of %s differs:\n got %s\nwant %s", what, want.Tensors[i].Name, g, w)
		}
	}
	if !reflect.DeepEqual(got.Findings, want.Findings) || !reflect.DeepEqual(got.Files, want.Files) || got.Summary != want.Summary {
		t.Fatalf("%s: scan findings or summary differ:\n got %+v %+v\nwant %+v %+v", what, got.Findings, got.Summary, want.Findings, want.Summary)
	}
}

// sameDiff fails unless two comparisons are equal to the bit (Work aside).
func sameDiff(t *testing.T, what string, got, want *Result) {
	t.Helper()
	show := func(r *Result) string {
		var b strings.Builder
		for _, d := range r.Tensors {
			fmt.Fprintf(&b, "%+v\n", *d)
		}
		for _, g := range append(append([]*Group{}, r.Layers...), r.Roles...) {
			fmt.Fprintf(&b, "%+v\n", *g)
		}
		fmt.Fprintf(&b, "%+v %v", r.Summary, r.Problems)
		return b.String()
	}
	if g, w := show(got), show(want); g != w {
		t.Fatalf("%s: comparison differs:\n got %s\nwant %s", what, g, w)
	}
}

// checkCompareScan runs CompareScan(a, b) and the separate Compare and Scan
// (the scan with one worker: the engine's results do not depend on the
// number) and requires the same results to the bit. It returns the fused
// comparison.
func checkCompareScan(t *testing.T, what string, a, b *formats.Checkpoint, dopts Options, sopts inspect.Options) *Result {
	t.Helper()
	ctx := context.Background()
	r, s, err := CompareScan(ctx, a, b, dopts, sopts)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	wantR, err := Compare(ctx, a, b, dopts)
	if err != nil {
		t.Fatal(err)
	}
	one := sopts
	one.Workers = 1
	wantS, err := inspect.Scan(ctx, b, one)
	if err != nil {
		t.Fatal(err)
	}
	sameDiff(t, what, r, wantR)
	sameScan(t, what, s, wantS)
	// Each tensor compared by value is read once on each side (Compare
	// alone may read A's identical chunks again for their norms); one at
	// the same place of the same file on both sides, once, and only when
	// the norms are needed.
	var read int64
	changed := r.Summary.Changed+r.Summary.DTypeChanged > 0
	for _, d := range r.Tensors {
		if d.Status != Changed && d.Status != Identical && d.Status != DTypeChanged {
			continue
		}
		ta, tb := a.Tensor(d.Name), b.Tensor(d.Name)
		if ta == nil || tb == nil { // names mapped across formats: two files
			read += d.Bytes
			continue
		}
		fa, errA := os.Stat(ta.File.Path)
		fb, errB := os.Stat(tb.File.Path)
		switch {
		case errA != nil || errB != nil:
			t.Fatal(errA, errB)
		case !os.SameFile(fa, fb) || ta.Offset != tb.Offset:
			read += d.Bytes
		case changed:
			read += ta.Length()
		}
	}
	if r.Work.BytesRead != read || (r.Summary.Changed > 0 && r.Work.ValuesDecoded != wantR.Work.ValuesDecoded) {
		t.Errorf("%s: work %+v, want %d bytes read (Compare alone: %+v)", what, r.Work, read, wantR.Work)
	}
	return r
}

// mixedPair writes two safetensors checkpoints of mixed dtypes: tensors
// changed, identical, only in A, only in B, reshaped, cast to another dtype,
// and NaN and infinities in B.
func mixedPair(t *testing.T) (a, b *formats.Checkpoint) {
	t.Helper()
	rng := rand.New(rand.NewSource(71))
	dir := t.TempDir()
	emb, half, dbl, cast := normals(rng, 300*1000, 0.02), normals(rng, 70_001, 2), normals(rng, 20_000, 1), normals(rng, 6_000, 1)
	ints := make([]float64, 10_000)
	for i := range ints {
		ints[i] = float64(rng.Intn(1000) - 500)
	}
	ln := normals(rng, 1000, 0.1)
	moved := func(v []float64, by float64) []float64 {
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = x + by*rng.NormFloat64()
		}
		return out
	}
	embB := moved(emb, 0.001)
	embB[12_345], embB[200_000], embB[299_999] = math.NaN(), math.Inf(1), math.Inf(-1)
	halfB := moved(half, 0.01)
	halfB[70_000] = math.NaN()
	onlyB := normals(rng, 5_000, 1)
	onlyB[7] = math.Inf(1)
	writeST(t, filepath.Join(dir, "a", "model.safetensors"),
		f(formats.BF16, "model.embed_tokens.weight", []uint64{300, 1000}, emb),
		f(formats.F32, "model.layers.0.input_layernorm.weight", []uint64{1000}, ln),
		f(formats.F16, "model.layers.0.mlp.up_proj.weight", []uint64{70_001}, half),
		f(formats.F64, "model.layers.1.mlp.down_proj.weight", []uint64{20_000}, dbl),
		f(formats.I32, "model.layers.1.counts", []uint64{10_000}, ints),
		f(formats.F32, "model.layers.1.cast", []uint64{6_000}, cast),
		f(formats.F32, "model.layers.1.reshaped", []uint64{10, 10}, normals(rng, 100, 1)),
		f(formats.BF16, "model.gone", []uint64{64}, normals(rng, 64, 1)),
	)
	writeST(t, filepath.Join(dir, "b", "model.safetensors"),
		f(formats.BF16, "model.embed_tokens.weight", []uint64{300, 1000}, embB),
		f(formats.F32, "model.layers.0.input_layernorm.weight", []uint64{1000}, ln),
		f(formats.F16, "model.layers.0.mlp.up_proj.weight", []uint64{70_001}, halfB),
		f(formats.F64, "model.layers.1.mlp.down_proj.weight", []uint64{20_000}, moved(dbl, 0.1)),
		f(formats.I32, "model.layers.1.counts", []uint64{10_000}, ints),
		f(formats.BF16, "model.layers.1.cast", []uint64{6_000}, moved(cast, 0.01)),
		f(formats.F32, "model.layers.1.reshaped", []uint64{100}, normals(rng, 100, 1)),
		f(formats.BF16, "model.only_b", []uint64{5_000}, onlyB),
	)
	return open(t, filepath.Join(dir, "a")), open(t, filepath.Join(dir, "b"))
}

func open(t *testing.T, path string) *formats.Checkpoint {
	t.Helper()
	c, err := formats.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCompareScanMatchesSeparateCalls: the fused comparison and scan give
// what Compare and inspect.Scan give, to the bit, for mixed dtypes with NaN
// and infinities, with any number of workers on either side, with chunk sizes
// that cut tensors at the same places (every scan chunk folded) and at
// different places (the scan reads the straddling chunks itself).
func TestCompareScanMatchesSeparateCalls(t *testing.T) {
	a, b := mixedPair(t)
	for _, ch := range []struct{ diff, scan int }{{4096, 4096}, {4096, 1000}, {16 << 10, 4096}, {0, 0}} {
		for _, workers := range []int{1, 2, 7} {
			what := fmt.Sprintf("chunks %d/%d, %d workers", ch.diff, ch.scan, workers)
			r := checkCompareScan(t, what, a, b, Options{Workers: workers, ChunkBytes: ch.diff}, inspect.Options{Workers: workers, ChunkBytes: ch.scan})
			s := r.Summary
			if s.Changed != 3 || s.Identical != 2 || s.DTypeChanged != 1 || s.ShapeChanged != 1 || s.OnlyA != 1 || s.OnlyB != 1 {
				t.Fatalf("%s: the pair does not hold the cases it should: %+v", what, s)
			}
			// The scan reads only what the comparison did not: tensors it does
			// not read (reshaped, only in B), and, when the engines cut
			// tensors at other places, the chunks that straddle.
			own := int64(100*4 + 5_000*2)
			want := map[int]int64{
				// The cast tensor is cut by F32's chunks on both sides: its
				// BF16 side's scan chunks straddle two of them.
				4096: own + 6_000*2,
				0:    own, // one chunk per tensor on both sides
			}
			if w, ok := want[ch.diff]; ok && ch.diff == ch.scan && r.Work.ScanBytesRead != w {
				t.Errorf("%s: the scan read %d bytes itself, want %d", what, r.Work.ScanBytesRead, w)
			}
			if r.Work.ScanBytesRead < own {
				t.Errorf("%s: the scan read %d bytes itself, less than the %d the comparison does not read", what, r.Work.ScanBytesRead, own)
			}
		}
	}
	// Every file read once, though some tensors are identical (their norms
	// are taken from the bytes in hand, A is not read again for them): A's
	// tensors but those only in A and reshaped, all of B's.
	count, _ := countReads(t)
	if _, _, err := CompareScan(context.Background(), a, b, Options{Workers: 3}, inspect.Options{Workers: 3}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*formats.Checkpoint{a, b} {
		var want int64
		for _, tn := range c.Tensors {
			if c == b || (tn.Name != "model.gone" && tn.Name != "model.layers.1.reshaped") {
				want += tn.Length()
			}
		}
		if got := count[c.Files[0].Path]; got != want {
			t.Errorf("%s: %d bytes read, want %d", c.Files[0].Path, got, want)
		}
	}
}

// TestCompareScanNothingChanged: a checkpoint against a byte-identical copy
// is, as with Compare, identical without norms, and the copy's scan is Scan's.
func TestCompareScanNothingChanged(t *testing.T) {
	ps := writeSeriesRun(t, 3)
	cp := filepath.Join(t.TempDir(), "copy")
	copyDir(t, ps[0], cp)
	for _, workers := range []int{1, 4} {
		r := checkCompareScan(t, fmt.Sprintf("%d workers", workers), open(t, ps[0]), open(t, cp), Options{Workers: workers, ChunkBytes: 4096}, inspect.Options{Workers: workers, ChunkBytes: 4096})
		if !r.Summary.Same() || r.Work.ScanBytesRead != 0 {
			t.Fatalf("summary %+v, work %+v", r.Summary, r.Work)
		}
		for _, d := range r.Tensors {
			if d.Compared {
				t.Fatalf("%s: compared (norms kept) though nothing changed", d.Name)
			}
		}
	}
}

// TestCompareScanReadsEachCheckpointOnce counts the bytes read from every
// file: the fused comparison and scan read each weight file of A and of B
// once (total bytes(A)+bytes(B)), where the separate calls read B twice.
func TestCompareScanReadsEachCheckpointOnce(t *testing.T) {
	ps := writeSeriesRun(t, 3)
	a, b := open(t, ps[0]), open(t, ps[1])
	data := map[string]int64{}
	for _, c := range []*formats.Checkpoint{a, b} {
		for _, tn := range c.Tensors {
			data[tn.File.Path] += tn.Length()
		}
	}
	if len(data) != 4 {
		t.Fatalf("%d weight files, want 2 shards on each side", len(data))
	}
	var total int64
	for _, n := range data {
		total += n
	}
	count, reset := countReads(t)
	for _, o := range []struct{ diff, scan int }{{0, 0}, {4096, 4096}} {
		for _, workers := range []int{1, 2, 5} {
			reset()
			what := fmt.Sprintf("chunks %d/%d, %d workers", o.diff, o.scan, workers)
			r := checkCompareScan(t, what, a, b, Options{Workers: workers, ChunkBytes: o.diff}, inspect.Options{Workers: workers, ChunkBytes: o.scan})
			if r.Summary.Changed == 0 {
				t.Fatalf("%s: nothing changed between the checkpoints: %+v", what, r.Summary)
			}
			// checkCompareScan ran CompareScan, then Compare and Scan alone:
			// B is read 3 times in all, A twice, only if CompareScan read each once.
			for path, want := range data {
				times := int64(2)
				if strings.HasPrefix(path, ps[1]) {
					times = 3
				}
				if got := count[path]; got != times*want {
					t.Errorf("%s: %s read %d bytes in all, want %d (its %d bytes of tensor data once by CompareScan)", what, path, got, times*want, want)
				}
			}
			reset()
			r, _, err := CompareScan(context.Background(), a, b, Options{Workers: workers, ChunkBytes: o.diff}, inspect.Options{Workers: workers, ChunkBytes: o.scan})
			if err != nil {
				t.Fatal(err)
			}
			var read int64
			for path, want := range data {
				read += count[path]
				if count[path] != want {
					t.Errorf("%s: CompareScan read %d bytes of %s, want its %d once", what, count[path], path, want)
				}
			}
			if read != total || r.Work.BytesRead != total || r.Work.ScanBytesRead != 0 {
				t.Errorf("%s: read %d bytes (work %+v), want bytes(A)+bytes(B) = %d", what, read, r.Work, total)
			}
		}
	}
}

// TestCompareScanGGUF: block types (whose chunks the two engines cut at
// different places), a grid IQ type the comparison does not decode (the
// scan reads it itself), and F32 and F16 tensors.
func TestCompareScanGGUF(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(73))
	qa := synth.QuantBlocks(ggml.Q4_K, 40, 1)
	qb := append([]byte(nil), qa...)
	for i := 0; i < len(qb); i += 97 {
		qb[i] ^= 0x11
	}
	synth.SetBlockScale(ggml.Q4_K, qb, 7, 0x7e00) // a NaN scale in B
	iq := synth.QuantBlocks(ggml.IQ2_XS, 1, 4)
	fa, fb := normals(rng, 4096, 1), normals(rng, 4096, 1)
	fb[99] = math.Inf(-1)
	write := func(name string, q4, q8, f32 []byte, f16 []float64) *formats.Checkpoint {
		g := &synth.GGUF{Tensors: []synth.GGUFTensor{
			{Name: "blk.0.attn_q.weight", Type: ggml.Q4_K, Shape: []uint64{40, 256}, Data: q4},
			{Name: "blk.0.ffn_up.weight", Type: ggml.Q8_0, Shape: []uint64{32, 64}, Data: q8},
			{Name: "blk.0.ffn_down.weight", Type: ggml.IQ2_XS, Shape: []uint64{1, 256}, Data: iq},
			{Name: "blk.0.attn_norm.weight", Type: ggml.F32, Shape: []uint64{4096}, Data: f32},
			{Name: "token_embd.weight", Type: ggml.F16, Shape: []uint64{64, 64}, Data: encode(formats.F16, f16)},
		}}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, g.Encode(), 0o644); err != nil {
			t.Fatal(err)
		}
		return open(t, p)
	}
	a := write("a.gguf", qa, synth.QuantBlocks(ggml.Q8_0, 64, 2), encode(formats.F32, fa), fa)
	b := write("b.gguf", qb, synth.QuantBlocks(ggml.Q8_0, 64, 3), encode(formats.F32, fb), fb)
	for _, chunk := range []int{1000, 4096, 0} {
		for _, workers := range []int{1, 3} {
			r := checkCompareScan(t, fmt.Sprintf("chunks %d, %d workers", chunk, workers), a, b, Options{Workers: workers, ChunkBytes: chunk}, inspect.Options{Workers: workers, ChunkBytes: chunk})
			if r.Summary.Changed != 4 || r.Summary.Unreadable != 1 {
				t.Fatalf("the pair does not hold the cases it should: %+v", r.Summary)
			}
		}
	}
}

// torchViews writes a torch.save zip holding a float32 [200, 300] tensor,
// its transpose (a strided view of the same storage) and a tensor tied to it
// (the same storage, offset, shape and strides), as torch saves them.
func torchViews(t *testing.T, path string, vals []float64) {
	t.Helper()
	str := func(s string) string {
		var n [4]byte
		binary.LittleEndian.PutUint32(n[:], uint32(len(s)))
		return "X" + string(n[:]) + s
	}
	num := func(v int) string {
		var n [4]byte
		binary.LittleEndian.PutUint32(n[:], uint32(v))
		return "J" + string(n[:])
	}
	entry := func(name string, size, stride [2]int) string {
		return str(name) + "ctorch._utils\n_rebuild_tensor_v2\n(" +
			"(" + str("storage") + "ctorch\nFloatStorage\n" + str("0") + str("cpu") + num(len(vals)) + "tQ" +
			num(0) + "(" + num(size[0]) + num(size[1]) + "t(" + num(stride[0]) + num(stride[1]) + "t\x89" +
			"ccollections\nOrderedDict\n)RtR"
	}
	pkl := "\x80\x02}(" + entry("w", [2]int{200, 300}, [2]int{300, 1}) + entry("w.t", [2]int{300, 200}, [2]int{1, 300}) +
		entry("w.tied", [2]int{200, 300}, [2]int{300, 1}) + "u."
	zip, err := hostile.TorchZip([]hostile.ZipRecord{
		{Name: "archive/data.pkl", Data: []byte(pkl)},
		{Name: "archive/data/0", Data: encode(formats.F32, vals)},
		{Name: "archive/version", Data: []byte("3\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, zip, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCompareScanTorchViewsAndTied: PyTorch files with a strided view (read
// through its strides on both sides) and a tied tensor (scanned once, under
// the tensor it is tied to).
func TestCompareScanTorchViewsAndTied(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(74))
	va := normals(rng, 60_000, 1)
	vb := make([]float64, len(va))
	for i, x := range va {
		vb[i] = x * 1.01
	}
	vb[5_000], vb[40_001] = math.NaN(), math.Inf(1)
	torchViews(t, filepath.Join(dir, "a.bin"), va)
	torchViews(t, filepath.Join(dir, "b.bin"), vb)
	a, b := open(t, filepath.Join(dir, "a.bin")), open(t, filepath.Join(dir, "b.bin"))
	if tn := b.Tensor("w.t"); tn == nil || tn.Contiguous() {
		t.Fatalf("w.t is not a strided view: %+v", tn)
	}
	if tn := b.Tensor("w.tied"); tn == nil || tn.TiedTo != "w" {
		t.Fatalf("w.tied is not tied to w: %+v", tn)
	}
	for _, chunk := range []int{4096, 0} {
		for _, workers := range []int{1, 2, 7} {
			what := fmt.Sprintf("chunks %d, %d workers", chunk, workers)
			r := checkCompareScan(t, what, a, b, Options{Workers: workers, ChunkBytes: chunk}, inspect.Options{Workers: workers, ChunkBytes: chunk})
			if r.Summary.Changed != 3 {
				t.Fatalf("%s: %+v", what, r.Summary)
			}
			if chunk == 0 && r.Work.ScanBytesRead != 0 {
				t.Errorf("%s: the scan read %d bytes itself; the comparison read every tensor whole", what, r.Work.ScanBytesRead)
			}
		}
	}
}

// TestCompareScanRealTorchFiles: each real PyTorch file of the shared corpus
// against a copy of itself (other inodes: both are read).
func TestCompareScanRealTorchFiles(t *testing.T) {
	root := testenv.RealdataTorch(t)
	raw, err := os.ReadFile(filepath.Join(root, "truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var truth map[string]struct {
		Format string `json:"format"`
	}
	if err := json.Unmarshal(raw, &truth); err != nil {
		t.Fatal(err)
	}
	n := 0
	for rel, f := range truth {
		if f.Format != "torch-zip" && f.Format != "torch-legacy" {
			continue
		}
		src, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		cp := filepath.Join(t.TempDir(), filepath.Base(rel))
		if err := os.WriteFile(cp, src, 0o644); err != nil {
			t.Fatal(err)
		}
		a, err := formats.Open(filepath.Join(root, rel))
		if err != nil || len(a.Tensors) == 0 {
			continue // no tensors (training_args.bin): nothing to compare
		}
		n++
		for _, workers := range []int{1, 3} {
			checkCompareScan(t, fmt.Sprintf("%s, %d workers", rel, workers), a, open(t, cp), Options{Workers: workers}, inspect.Options{Workers: workers})
		}
	}
	if n < 5 {
		t.Errorf("%d real PyTorch files with tensors, want at least 5", n)
	}
}

// TestCompareScanSharedFile: a shard hard-linked into both checkpoints is
// not read by the comparison, unless another tensor changed and its norms
// are needed: then the bytes read from A serve B's scan too, and the shared
// file is read once in all.
func TestCompareScanSharedFile(t *testing.T) {
	ps := writeSeriesRun(t, 3)
	a := ps[0]
	b := filepath.Join(t.TempDir(), "b")
	copyDir(t, ps[1], b)
	shard := synth.ShardName(1, 2)
	if err := os.Remove(filepath.Join(b, shard)); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(a, shard), filepath.Join(b, shard)); err != nil {
		t.Fatal(err)
	}
	ca, cb := open(t, a), open(t, b)
	var shared int64
	for _, tn := range ca.Tensors {
		if filepath.Base(tn.File.Path) == shard {
			shared += tn.Length()
		}
	}
	count, reset := countReads(t)
	for _, workers := range []int{1, 3} {
		reset()
		r, _, err := CompareScan(context.Background(), ca, cb, Options{Workers: workers}, inspect.Options{Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		if r.Summary.Changed == 0 || r.Summary.Identical == 0 {
			t.Fatalf("the pair should hold changed and shared tensors: %+v", r.Summary)
		}
		if got := count[filepath.Join(a, shard)] + count[filepath.Join(b, shard)]; got != shared || r.Work.ScanBytesRead != 0 {
			t.Errorf("%d workers: the shared shard's %d bytes read %d times over (work %+v)", workers, shared, got, r.Work)
		}
		checkCompareScan(t, fmt.Sprintf("%d workers", workers), ca, cb, Options{Workers: workers}, inspect.Options{Workers: workers})
	}
}

// TestCompareScanCrossFormat: a safetensors model against its GGUF
// conversion (names mapped, q/k rows permuted back) in both directions: B's
// scan is folded from its raw bytes, before any permutation, and is Scan's.
func TestCompareScanCrossFormat(t *testing.T) {
	hf, gg := crossModel(t, t.TempDir(), false, "llama")
	for _, order := range [][2]string{{hf, gg}, {gg, hf}} {
		for _, chunk := range []int{2048, 0} {
			what := fmt.Sprintf("%s → %s, chunks %d", filepath.Base(order[0]), filepath.Base(order[1]), chunk)
			r := checkCompareScan(t, what, open(t, order[0]), open(t, order[1]), Options{Workers: 2, ChunkBytes: chunk}, inspect.Options{Workers: 2, ChunkBytes: chunk})
			if r.CrossFormat == nil || r.Summary.DTypeChanged == 0 {
				t.Fatalf("%s: not compared across formats: %+v", what, r.Summary)
			}
		}
	}
}
