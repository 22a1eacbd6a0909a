package diff

import (
	"context"
	"errors"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
)

// randomPair makes a tensor's bytes in A and a B that differs in about one
// element in ten, with non-finite values appearing and disappearing where the
// dtype has them.
func randomPair(r *rand.Rand, dt formats.DType, numel int) ([]byte, []byte) {
	var a []byte
	switch dt {
	case formats.F64, formats.F32, formats.BF16, formats.F16:
		vals := normals(r, numel, 0.5)
		for i := range vals {
			if r.Intn(40) == 0 {
				vals[i] = math.NaN()
			}
		}
		a = encode(dt, vals)
	default: // any bit pattern is a value (or a NaN) of these dtypes
		n := (numel*scalarBits(dt) + 7) / 8
		if dt == formats.C64 {
			n = numel * 8
		}
		a = make([]byte, n)
		r.Read(a)
	}
	b := append([]byte(nil), a...)
	size := max(1, dt.Bits()/8)
	for i := 0; i < len(b); i += size {
		switch r.Intn(10) {
		case 0:
			b[i] ^= byte(1 + r.Intn(255))
		case 1:
			if dt.IsFloat() && dt.Size() >= 2 && dt != formats.C64 {
				copy(b[i:], encode(formats.F64, []float64{math.Inf(1)})[8-size:]) // an all-ones exponent: Inf or NaN
			}
		}
	}
	return a, b
}

func TestCompareMatchesReference(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	dir := t.TempDir()
	type spec struct {
		dt    formats.DType
		numel int
	}
	specs := []spec{{formats.F32, 1001}, {formats.BF16, 4099}, {formats.F16, 777}, {formats.F64, 300},
		{formats.F8_E4M3, 513}, {formats.F8_E5M2, 1024}, {formats.F8_E4M3FNUZ, 99}, {formats.F4, 1002},
		{formats.F6_E2M3, 1004}, {formats.F6_E3M2, 64}, {formats.I32, 200}, {formats.U8, 77}, {formats.C64, 50},
		{formats.BF16, 0}, {formats.BF16, 1}}
	var ta, tb []tensor
	raws := map[string][2][]byte{}
	for i, s := range specs {
		name := "t" + string(rune('a'+i)) + "." + string(s.dt)
		a, b := randomPair(r, s.dt, s.numel)
		raws[name] = [2][]byte{a, b}
		shape := []uint64{uint64(s.numel)}
		ta = append(ta, tensor{name, s.dt, shape, a})
		tb = append(tb, tensor{name, s.dt, shape, b})
	}
	pa, pb := filepath.Join(dir, "a.safetensors"), filepath.Join(dir, "b.safetensors")
	writeST(t, pa, ta...)
	writeST(t, pb, tb...)
	var first *Result
	for _, o := range []Options{{Workers: 1, ChunkBytes: 64}, {Workers: 3, ChunkBytes: 72}, {Workers: 2}, {Workers: 7, ChunkBytes: 100}} {
		res, err := ComparePaths(context.Background(), pa, pb, o)
		if err != nil {
			t.Fatal(err)
		}
		for name, rb := range raws {
			d := res.Tensor(name)
			dt := d.DTypeA
			want := ReferenceCompare(dt, rb[0], dt, rb[1])
			if !statsCloseFor(dt, d.Stats, want, 1e-12) {
				t.Errorf("%+v %s:\n got  %+v\n want %+v", o, name, d.Stats, want)
			}
			wantStatus := Changed
			if string(rb[0]) == string(rb[1]) {
				wantStatus = Identical
			}
			if d.Status != wantStatus {
				t.Errorf("%+v %s: status %s, want %s", o, name, d.Status, wantStatus)
			}
		}
		// Merged in a fixed order: identical results whatever the workers, per chunk size.
		if o.ChunkBytes == 0 {
			first = res
		}
	}
	again, _ := ComparePaths(context.Background(), pa, pb, Options{Workers: 1})
	for _, d := range first.Tensors {
		if !reflect.DeepEqual(d, again.Tensor(d.Name)) {
			t.Errorf("%s differs between 2 workers and 1", d.Name)
		}
	}
}

func TestCompareWorkerIndependence(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	dir := t.TempDir()
	a, b := randomPair(r, formats.BF16, 50000)
	pa, pb := filepath.Join(dir, "a.safetensors"), filepath.Join(dir, "b.safetensors")
	writeST(t, pa, tensor{"w", formats.BF16, []uint64{100, 500}, a})
	writeST(t, pb, tensor{"w", formats.BF16, []uint64{100, 500}, b})
	var ref *TensorDiff
	for _, w := range []int{1, 2, 5} {
		res, err := ComparePaths(context.Background(), pa, pb, Options{Workers: w, ChunkBytes: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if ref == nil {
			ref = res.Tensors[0]
		} else if !reflect.DeepEqual(ref, res.Tensors[0]) {
			t.Fatalf("workers=%d: %+v, workers=1: %+v", w, res.Tensors[0], ref)
		}
	}
}

func TestCompareStatuses(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	dir := t.TempDir()
	same := normals(r, 16, 1)
	chg := normals(r, 16, 1)
	chg2 := append([]float64(nil), chg...)
	chg2[3] += 0.5
	dtv := normals(r, 8, 1)
	pa, pb := filepath.Join(dir, "a.safetensors"), filepath.Join(dir, "b.safetensors")
	writeST(t, pa,
		f(formats.F32, "same", []uint64{16}, same),
		f(formats.F32, "chg", []uint64{4, 4}, chg),
		f(formats.F32, "gone", []uint64{2}, []float64{1, 2}),
		f(formats.F32, "reshaped", []uint64{4}, []float64{1, 2, 3, 4}),
		f(formats.F32, "cast", []uint64{8}, dtv))
	writeST(t, pb,
		f(formats.F32, "same", []uint64{16}, same),
		f(formats.F32, "chg", []uint64{4, 4}, chg2),
		f(formats.F32, "new", []uint64{2}, []float64{1, 2}),
		f(formats.F32, "reshaped", []uint64{2, 2}, []float64{1, 2, 3, 4}),
		f(formats.BF16, "cast", []uint64{8}, dtv))
	res, err := ComparePaths(context.Background(), pa, pb, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Status{"same": Identical, "chg": Changed, "gone": OnlyA, "new": OnlyB, "reshaped": ShapeChanged, "cast": DTypeChanged}
	for name, st := range want {
		d := res.Tensor(name)
		if d == nil || d.Status != st {
			t.Errorf("%s: %+v, want status %s", name, d, st)
		}
	}
	s := res.Summary
	if s.Tensors != 6 || s.Identical != 1 || s.Changed != 1 || s.OnlyA != 1 || s.OnlyB != 1 || s.ShapeChanged != 1 || s.DTypeChanged != 1 || s.Same() {
		t.Errorf("summary %+v", s)
	}
	// chg: one element moved by 0.5 (F32-exact), so ||Δ|| = 0.5.
	var na float64
	for _, v := range chg {
		na += float64(float32(v)) * float64(float32(v))
	}
	d := res.Tensor("chg")
	if rel, ok := d.RelL2(); !ok || math.Abs(rel-0.5/math.Sqrt(na)) > 1e-6*rel || d.Differ != 1 {
		t.Errorf("chg: rel %v ok %v differ %d, want %v", rel, ok, d.Differ, 0.5/math.Sqrt(na))
	}
	if m, ok := d.MaxAbsDiff(); !ok || math.Abs(m-0.5) > 1e-6 {
		t.Errorf("chg max_abs %v", m)
	}
	// cast: BF16 truncation of F32 values changes each by < 2^-8 relative.
	if rel, ok := res.Tensor("cast").RelL2(); !ok || rel <= 0 || rel > 1.0/256 {
		t.Errorf("cast rel %v ok %v", rel, ok)
	}
	if c, ok := res.Tensor("cast").Cosine(); !ok || c < 0.9999 {
		t.Errorf("cast cosine %v", c)
	}
	// Sorted by change: the structural changes before "chg", "same" last.
	if res.Tensors[len(res.Tensors)-1].Name != "same" {
		t.Errorf("identical tensor not last: %v", res.Tensors[len(res.Tensors)-1].Name)
	}
}

func TestCompareIdenticalIsNotDecoded(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	dir := t.TempDir()
	pa := filepath.Join(dir, "a.safetensors")
	writeST(t, pa,
		f(formats.BF16, "model.layers.0.w", []uint64{300, 200}, normals(r, 60000, 0.02)),
		f(formats.F32, "model.norm.weight", []uint64{64}, normals(r, 64, 1)))
	data, err := os.ReadFile(pa)
	if err != nil {
		t.Fatal(err)
	}
	pb := filepath.Join(dir, "b.safetensors")
	if err := os.WriteFile(pb, data, 0o644); err != nil {
		t.Fatal(err)
	}
	before, read := decodedValues.Load(), readBytes.Load()
	res, err := ComparePaths(context.Background(), pa, pb, Options{ChunkBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if n := decodedValues.Load() - before; n != 0 {
		t.Errorf("%d values decoded to compare identical files", n)
	}
	if n := readBytes.Load() - read; n != 2*(120000+256) || res.Work.BytesRead != n || res.Work.ValuesDecoded != 0 {
		t.Errorf("%d bytes read to compare two copies, want each read once; summary says %d read, %d decoded", n, res.Work.BytesRead, res.Work.ValuesDecoded)
	}
	// The same file on both sides is not even read.
	read = readBytes.Load()
	self, err := ComparePaths(context.Background(), pa, pa, Options{ChunkBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if n := readBytes.Load() - read; n != 0 || !self.Summary.Same() || self.Work.BytesRead != 0 {
		t.Errorf("comparing a file with itself read %d bytes; same %v", n, self.Summary.Same())
	}
	if !res.Summary.Same() || res.Summary.Bytes != 2*(120000+256) {
		t.Errorf("summary %+v", res.Summary)
	}
	for _, d := range res.Tensors {
		if d.Status != Identical || d.Compared {
			t.Errorf("%s: %s compared=%v", d.Name, d.Status, d.Compared)
		}
		if rel, ok := d.RelL2(); !ok || rel != 0 {
			t.Errorf("%s: rel %v %v", d.Name, rel, ok)
		}
	}
	if rel, ok := res.RelL2(); !ok || rel != 0 {
		t.Errorf("overall rel %v %v", rel, ok)
	}
}

func TestCompareAggregatesIncludeIdenticalTensors(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	dir := t.TempDir()
	names := []string{"model.embed_tokens.weight", "model.layers.0.a.weight", "model.layers.0.b.weight",
		"model.layers.1.a.weight", "model.layers.1.b.weight", "model.layers.10.a.weight", "model.layers.2.a.weight"}
	vals := map[string][]float64{}
	var ta, tb []tensor
	for _, n := range names {
		v := normals(r, 500, 0.1)
		for i := range v {
			v[i] = float64(float32(v[i]))
		}
		vals[n] = v
		ta = append(ta, f(formats.F32, n, []uint64{500}, v))
		w := v
		if n == "model.layers.1.a.weight" { // the only change
			w = append([]float64(nil), v...)
			for i := range w {
				w[i] = float64(float32(w[i] * 1.5))
			}
		}
		tb = append(tb, f(formats.F32, n, []uint64{500}, w))
	}
	pa, pb := filepath.Join(dir, "a.safetensors"), filepath.Join(dir, "b.safetensors")
	writeST(t, pa, ta...)
	writeST(t, pb, tb...)
	res, err := ComparePaths(context.Background(), pa, pb, Options{ChunkBytes: 512})
	if err != nil {
		t.Fatal(err)
	}
	ss := func(n string) float64 {
		var s float64
		for _, x := range vals[n] {
			s += x * x
		}
		return s
	}
	delta := 0.0
	for _, x := range vals["model.layers.1.a.weight"] {
		d := float64(float32(x*1.5)) - x
		delta += d * d
	}
	total := 0.0
	for _, n := range names {
		total += ss(n)
	}
	check := func(what string, got float64, ok bool, want float64) {
		t.Helper()
		if !ok || math.Abs(got-want) > 1e-9*want {
			t.Errorf("%s: %v (ok %v), want %v", what, got, ok, want)
		}
	}
	rel, ok := res.RelL2()
	check("overall", rel, ok, math.Sqrt(delta/total))
	var keys []string
	for _, g := range res.Layers {
		keys = append(keys, g.Key)
		rel, ok := g.RelL2()
		switch g.Key {
		case "model.layers.1":
			check("layer 1", rel, ok, math.Sqrt(delta/(ss("model.layers.1.a.weight")+ss("model.layers.1.b.weight"))))
			if g.Tensors != 2 || g.Changed != 1 {
				t.Errorf("layer 1: %+v", g)
			}
		default:
			if !ok || rel != 0 || g.Changed != 0 {
				t.Errorf("layer %q: rel %v changed %d", g.Key, rel, g.Changed)
			}
		}
	}
	if want := []string{"", "model.layers.0", "model.layers.1", "model.layers.2", "model.layers.10"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("layer order %q, want %q", keys, want)
	}
	for _, g := range res.Roles {
		if g.Key == "model.layers.*.a.weight" {
			rel, ok := g.RelL2()
			var s float64
			for _, n := range names {
				if r, _ := formats.Role(n); r == g.Key {
					s += ss(n)
				}
			}
			check("role a", rel, ok, math.Sqrt(delta/s))
			if g.Tensors != 4 {
				t.Errorf("role a has %d tensors", g.Tensors)
			}
		}
	}
	for _, d := range res.Tensors {
		if d.Status == Identical && !d.Compared {
			t.Errorf("%s: identical tensor without norms in a mixed comparison", d.Name)
		}
	}
}

func TestCompareNonFiniteAppearing(t *testing.T) {
	dir := t.TempDir()
	a := []float64{1, 2, math.NaN(), 4, 5, 6, 7, 8, 9, 10}
	b := []float64{math.NaN(), math.NaN(), 3, math.Inf(1), 5, math.Inf(-1), 7, math.NaN(), 9, 10}
	pa, pb := filepath.Join(dir, "a.safetensors"), filepath.Join(dir, "b.safetensors")
	writeST(t, pa, f(formats.BF16, "w", []uint64{10}, a))
	writeST(t, pb, f(formats.BF16, "w", []uint64{10}, b))
	res, err := ComparePaths(context.Background(), pa, pb, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := res.Tensors[0]
	if d.Appeared != 5 || d.Disappeared != 1 || d.NonFiniteA != 1 || d.NonFiniteB != 5 || d.Pairs != 4 || d.Differ != 6 {
		t.Fatalf("%+v", d.Stats)
	}
	if rel, ok := d.RelL2(); !ok || rel != 0 {
		t.Errorf("rel over the finite pairs %v %v, want 0", rel, ok)
	}
	if res.Summary.Appeared != 5 {
		t.Errorf("summary appeared %d", res.Summary.Appeared)
	}
}

func TestCompareTruncatedTensorIsUnreadable(t *testing.T) {
	dir := t.TempDir()
	pa, pb := filepath.Join(dir, "a.safetensors"), filepath.Join(dir, "b.safetensors")
	vals := make([]float64, 100)
	writeST(t, pa, f(formats.F32, "a", []uint64{100}, vals), f(formats.F32, "b", []uint64{100}, vals))
	writeST(t, pb, f(formats.F32, "a", []uint64{100}, vals), f(formats.F32, "b", []uint64{100}, vals))
	st, _ := os.Stat(pb)
	if err := os.Truncate(pb, st.Size()-10); err != nil {
		t.Fatal(err)
	}
	res, err := ComparePaths(context.Background(), pa, pb, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d := res.Tensor("a"); d.Status != Identical {
		t.Errorf("intact tensor: %s", d.Status)
	}
	if d := res.Tensor("b"); d.Status != Unreadable || d.Reason == "" {
		t.Errorf("cut tensor: %s %q", d.Status, d.Reason)
	}
	if len(res.Problems) == 0 || !errors.Is(res.Problems[0].Err, formats.ErrMetadataIncompleteBuffer) {
		t.Errorf("problems %v", res.Problems)
	}
	if res.Tensors[0].Name != "b" {
		t.Errorf("unreadable tensor not first")
	}
}

func TestCompareCancelled(t *testing.T) {
	dir := t.TempDir()
	pa := filepath.Join(dir, "a.safetensors")
	writeST(t, pa, f(formats.F32, "a", []uint64{1000}, make([]float64, 1000)))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ComparePaths(ctx, pa, pa, Options{ChunkBytes: 64}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

func TestCompareRealdata(t *testing.T) {
	rd := moduleRealdata(t)
	ml := filepath.Join(rd, "kako-jun__diffai/@adffa46380/to-migrate/deprecated/tests-old/fixtures/ml_models")
	t.Run("fc1 scaled about 100x", func(t *testing.T) {
		res, err := ComparePaths(context.Background(), filepath.Join(ml, "normal_model.safetensors"), filepath.Join(ml, "anomalous_model.safetensors"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range res.Tensors {
			if d.Name == "fc1.weight" || d.Name == "fc1.bias" {
				rel, _ := d.RelL2()
				cos, _ := d.Cosine()
				if d.Status != Changed || rel < 90 || rel > 110 || cos < 0.999 {
					t.Errorf("%s: %s rel %v cos %v", d.Name, d.Status, rel, cos)
				}
			} else if d.Status != Identical {
				t.Errorf("%s: %s", d.Name, d.Status)
			}
		}
		if res.Tensors[0].Name[:3] != "fc1" || res.Tensors[1].Name[:3] != "fc1" {
			t.Errorf("fc1 not sorted first: %s %s", res.Tensors[0].Name, res.Tensors[1].Name)
		}
	})
	t.Run("epoch series against the reference", func(t *testing.T) {
		for _, p := range [][2]string{{"checkpoint_epoch_0", "checkpoint_epoch_10"}, {"checkpoint_epoch_10", "checkpoint_epoch_50"}} {
			pa, pb := filepath.Join(ml, p[0]+".safetensors"), filepath.Join(ml, p[1]+".safetensors")
			res, err := ComparePaths(context.Background(), pa, pb, Options{ChunkBytes: 256})
			if err != nil {
				t.Fatal(err)
			}
			ca, _ := formats.Open(pa)
			cb, _ := formats.Open(pb)
			for _, d := range res.Tensors {
				want := ReferenceCompare(d.DTypeA, tensorBytes(t, ca, d.Name), d.DTypeB, tensorBytes(t, cb, d.Name))
				if d.Status != Changed || !statsClose(d.Stats, want, 1e-12) {
					t.Errorf("%v %s: %s %+v, want %+v", p, d.Name, d.Status, d.Stats, want)
				}
			}
		}
	})
	t.Run("NaN appearing in a diverged model", func(t *testing.T) {
		tl := filepath.Join(rd, "JunSuzukiJapan__tl")
		res, err := ComparePaths(context.Background(), filepath.Join(tl, "@962514214a/model_2digit.safetensors"), filepath.Join(tl, "@b77a867ed0/model_2digit.safetensors"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, d := range res.Tensors {
			if d.Appeared > 0 {
				n++
			}
			if d.NonFiniteA != 0 {
				t.Errorf("%s: the healthy model has %d non-finite values", d.Name, d.NonFiniteA)
			}
		}
		if res.Summary.Appeared != 59725 || n != 14 {
			t.Errorf("%d NaN appeared in %d tensors, want 59725 in 14", res.Summary.Appeared, n)
		}
	})
}

func tensorBytes(t *testing.T, c *formats.Checkpoint, name string) []byte {
	t.Helper()
	x := c.Tensor(name)
	b := make([]byte, x.Length())
	src, err := formats.OpenSource(x.File.Path, formats.Pread)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.ReadAt(b, x.Offset); err != nil {
		t.Fatal(err)
	}
	return b
}

// The fast same-dtype kernels agree with their plain twin (DecodeFloat64 and
// compareValues) on random bit patterns, every non-finite one included.
func TestFastKernelsMatchTwin(t *testing.T) {
	// Signed zeros, equal values, tiny and large steps, in every lane position.
	for _, dt := range []formats.DType{formats.BF16, formats.F16, formats.F32} {
		vals := []float64{0, math.Copysign(0, -1), 1, -1, 0.5, 1e-3, 3}
		var a, b []float64
		for _, x := range vals {
			for _, y := range vals {
				a, b = append(a, x), append(b, y)
			}
		}
		var fast, twin Stats
		ea, eb := encode(dt, a), encode(dt, b)
		fastKernel(dt, dt)(ea, eb, &fast)
		inspect.DecodeFloat64(dt, ea, a)
		inspect.DecodeFloat64(dt, eb, b)
		compareValues(a, b, &twin)
		if !statsCloseFor(dt, fast, twin, 1e-12) {
			t.Errorf("%s signed zeros:\n fast %+v\n twin %+v", dt, fast, twin)
		}
	}
	r := rand.New(rand.NewSource(9))
	for _, dt := range []formats.DType{formats.BF16, formats.F16, formats.F32} {
		k := fastKernel(dt, dt)
		size := dt.Bits() / 8
		for round := 0; round < 50; round++ {
			n := 1 + r.Intn(3000)
			a, b := make([]byte, n*size), make([]byte, n*size)
			r.Read(a)
			copy(b, a)
			for i := 0; i < n; i++ {
				switch r.Intn(6) {
				case 0:
					r.Read(b[i*size : (i+1)*size]) // any pattern: NaN, Inf, huge
				case 1:
					b[i*size] ^= 1 // a small change
				case 2: // an all-ones exponent in A (Inf or NaN)
					a[(i+1)*size-1] |= 0x7F
					a[(i+1)*size-2] |= 0xF0
				}
			}
			var fast, twin Stats
			k(a, b, &fast)
			fa, fb := make([]float64, n), make([]float64, n)
			inspect.DecodeFloat64(dt, a, fa)
			inspect.DecodeFloat64(dt, b, fb)
			compareValues(fa, fb, &twin)
			if !statsCloseFor(dt, fast, twin, 1e-12) {
				t.Fatalf("%s n=%d:\n fast %+v\n twin %+v", dt, n, fast, twin)
			}
		}
	}
}

// A shard hard-linked into both checkpoints is not read for the comparison,
// but its norms are when another shard changed (the aggregates need them).
func TestCompareSharedFileInMixedComparison(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewSource(11))
	x := normals(r, 64, 1)
	y := normals(r, 64, 1)
	y2 := append([]float64(nil), y...)
	y2[5] += 1
	writeST(t, filepath.Join(dir, "a", "x.safetensors"), f(formats.F32, "x", []uint64{64}, x))
	writeST(t, filepath.Join(dir, "a", "y.safetensors"), f(formats.F32, "y", []uint64{64}, y))
	if err := os.MkdirAll(filepath.Join(dir, "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "a", "x.safetensors"), filepath.Join(dir, "b", "x.safetensors")); err != nil {
		t.Skip("no hard links here:", err)
	}
	writeST(t, filepath.Join(dir, "b", "y.safetensors"), f(formats.F32, "y", []uint64{64}, y2))
	res, err := ComparePaths(context.Background(), filepath.Join(dir, "a"), filepath.Join(dir, "b"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	dx, dy := res.Tensor("x"), res.Tensor("y")
	var ss float64
	for _, v := range x {
		ss += float64(float32(v)) * float64(float32(v))
	}
	if dx.Status != Identical || !dx.Compared || math.Abs(dx.SumSqA-ss) > 1e-9*ss || dy.Status != Changed {
		t.Errorf("x %+v, y %s", dx, dy.Status)
	}
}

// Once a chunk has changed, identical chunks get their norms from the bytes
// already read: every byte of both files is read once and every value decoded
// once (Result.Work), and the result is the one the second pass gives.
func TestCompareReadsIdenticalChunksOnceAfterAChange(t *testing.T) {
	r := rand.New(rand.NewSource(12))
	dir := t.TempDir()
	x, y := normals(r, 4000, 0.02), normals(r, 4000, 0.02)
	x2 := append([]float64(nil), x...)
	x2[7] += 1
	pa, pb := filepath.Join(dir, "a.safetensors"), filepath.Join(dir, "b.safetensors")
	writeST(t, pa, f(formats.BF16, "model.layers.0.a", []uint64{4000}, x), f(formats.BF16, "model.layers.0.b", []uint64{4000}, y))
	writeST(t, pb, f(formats.BF16, "model.layers.0.a", []uint64{4000}, x2), f(formats.BF16, "model.layers.0.b", []uint64{4000}, y))
	res, err := ComparePaths(context.Background(), pa, pb, Options{Workers: 1, ChunkBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Work.BytesRead != 2*2*8000 || res.Work.ValuesDecoded != 8000 {
		t.Errorf("work %+v, want each byte read once (%d) and each value of A decoded once (8000)", res.Work, 2*2*8000)
	}
	b := res.Tensor("model.layers.0.b")
	want := ReferenceCompare(formats.BF16, encode(formats.BF16, y), formats.BF16, encode(formats.BF16, y))
	if b.Status != Identical || !b.Compared || !statsCloseFor(formats.BF16, b.Stats, want, 1e-12) {
		t.Errorf("identical tensor %s compared=%v %+v, want %+v", b.Status, b.Compared, b.Stats, want)
	}
	// With several workers the result is the same, whichever pass took the norms.
	for _, w := range []int{2, 3} {
		again, err := ComparePaths(context.Background(), pa, pb, Options{Workers: w, ChunkBytes: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range res.Tensors {
			if e := again.Tensor(d.Name); e.Stats != d.Stats || e.Status != d.Status {
				t.Errorf("%d workers: %s %+v, want %+v", w, d.Name, e.Stats, d.Stats)
			}
		}
	}
}
