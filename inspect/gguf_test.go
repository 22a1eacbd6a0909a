package inspect

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/formats/ggml"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// badScales are fp16 scale patterns: NaN, ±Inf, subnormal, zero, huge.
var badScales = []uint16{0x7e00, 0x7c00, 0xfc00, 0x0001, 0x0000, 0x7bff, 0xfe01}

// TestBlockStatsMatchesReference holds the block kernel (fast dequantizers,
// folded blockElems at a time) to ReferenceStats (reference dequantizers,
// element by element) on every block type, with special scales injected.
func TestBlockStatsMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, ty := range ggml.Types() {
		if !ty.Blocked() {
			continue
		}
		dt, _ := formats.DTypeOfGGML(ty)
		tr, _ := ty.Traits()
		for _, blocks := range []int{1, 3, 4096/tr.BlockElems + 1, 70} {
			data := synth.QuantBlocks(ty, blocks, r.Uint64())
			if tr.Scales != nil || tr.ScaleF32 {
				for i := 0; i < blocks; i++ {
					if r.IntN(3) == 0 {
						synth.SetBlockScale(ty, data, i, badScales[r.IntN(len(badScales))])
					}
				}
			}
			data = append(data, 1, 2, 3) // a trailing partial block is ignored
			got, want := Stats(dt, data), ReferenceStats(dt, data)
			checkAcc(t, string(dt), got, want, 1e-9)
			if got.BadScales != want.BadScales || got.Undecoded != want.Undecoded {
				t.Fatalf("%s: bad scales %d/%d, undecoded %d/%d", dt, got.BadScales, want.BadScales, got.Undecoded, want.Undecoded)
			}
		}
	}
}

// scanPath opens and scans path with the default options.
func scanPath(t *testing.T, path string) *Result {
	t.Helper()
	c, err := formats.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Scan(context.Background(), c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// writeGGUF encodes g into dir/name.
func writeGGUF(t testing.TB, dir, name string, g *synth.GGUF) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, g.Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func f16Data(vals ...uint16) []byte {
	b := make([]byte, 2*len(vals))
	for i, v := range vals {
		b[2*i], b[2*i+1] = byte(v), byte(v>>8)
	}
	return b
}

// TestScanGGUF scans a generated GGUF with injected damage and checks exact
// counts and findings: NaN block scales in Q4_K, an Inf scale in Q8_0, NaN
// values in F16, BF16 and F32 tensors, a NaN scale in an undecoded IQ type.
func TestScanGGUF(t *testing.T) {
	q4 := synth.QuantBlocks(ggml.Q4_K, 8, 1)
	synth.SetBlockScale(ggml.Q4_K, q4, 3, 0x7e00) // NaN: 256 NaN values
	synth.SetBlockScale(ggml.Q4_K, q4, 5, 0x7e00)
	q8 := synth.QuantBlocks(ggml.Q8_0, 4, 2)
	synth.SetBlockScale(ggml.Q8_0, q8, 1, 0x7c00) // +Inf: ±Inf or NaN (0·Inf) per value
	iq := synth.QuantBlocks(ggml.IQ2_XXS, 2, 3)
	synth.SetBlockScale(ggml.IQ2_XXS, iq, 0, 0x7e00)
	f32 := make([]byte, 4*6)
	copy(f32[8:], []byte{0, 0, 0xc0, 0x7f}) // NaN at 2
	g := &synth.GGUF{
		KV: []synth.KV{{Key: "general.architecture", Value: "llama"}},
		Tensors: []synth.GGUFTensor{
			{Name: "blk.0.attn_q.weight", Type: ggml.Q4_K, Shape: []uint64{8, 256}, Data: q4},
			{Name: "blk.0.ffn_up.weight", Type: ggml.Q8_0, Shape: []uint64{2, 64}, Data: q8},
			{Name: "blk.0.ffn_down.weight", Type: ggml.IQ2_XXS, Shape: []uint64{2, 256}, Data: iq},
			{Name: "token_embd.weight", Type: ggml.F16, Shape: []uint64{2, 2}, Data: f16Data(0x3c00, 0x7e00, 0xfc00, 0)},
			{Name: "blk.0.attn_norm.weight", Type: ggml.BF16, Shape: []uint64{3}, Data: f16Data(0x3f80, 0x7fc0, 0x7f80)},
			{Name: "output_norm.weight", Type: ggml.F32, Shape: []uint64{6}, Data: f32},
		},
	}
	p := writeGGUF(t, t.TempDir(), "m.gguf", g)
	c, err := formats.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Scan(context.Background(), c, Options{ChunkBytes: 300, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	// Q8_0 with an Inf scale: each value is q*Inf, NaN where q == 0.
	var q8NaN, q8Pos, q8Neg uint64
	for _, q := range q8[34+2 : 34+34] {
		switch v := int8(q); {
		case v == 0:
			q8NaN++
		case v > 0:
			q8Pos++
		default:
			q8Neg++
		}
	}
	want := map[string][5]uint64{ // NaN, +Inf, -Inf, bad scales, undecoded
		"blk.0.attn_q.weight":    {512, 0, 0, 2, 0},
		"blk.0.ffn_up.weight":    {q8NaN, q8Pos, q8Neg, 1, 0},
		"blk.0.ffn_down.weight":  {0, 0, 0, 1, 512},
		"token_embd.weight":      {1, 0, 1, 0, 0},
		"blk.0.attn_norm.weight": {1, 1, 0, 0, 0},
		"output_norm.weight":     {1, 0, 0, 0, 0},
	}
	for _, ts := range res.Tensors {
		w := want[ts.Name]
		got := [5]uint64{ts.NaN, ts.PosInf, ts.NegInf, ts.BadScales, ts.Undecoded}
		if got != w || ts.Skipped != "" {
			t.Errorf("%s: NaN/+Inf/-Inf/bad scales/undecoded %v, want %v (skipped %q)", ts.Name, got, w, ts.Skipped)
		}
	}
	if ts := res.Tensors[0]; ts.FirstBad != 3*256 || ts.Count != 2048 {
		t.Errorf("Q4_K first bad %d of %d", ts.FirstBad, ts.Count)
	}
	if res.Files[0].Tensors != 6 {
		t.Errorf("file summary %+v", res.Files[0])
	}
	var msgs []string
	for _, f := range res.Findings {
		if f.Check == CheckNonFinite {
			msgs = append(msgs, f.Tensor+": "+f.Message)
		}
	}
	if len(msgs) != 6 || res.Summary.NonFiniteTensors != 6 {
		t.Fatalf("findings %q", msgs)
	}
	all := strings.Join(msgs, "\n")
	for _, s := range []string{"2 of 8 Q4_K blocks have a non-finite scale", "1 of 2 IQ2_XXS blocks have a non-finite scale, so all their values are NaN or infinite"} {
		if !strings.Contains(all, s) {
			t.Errorf("no finding says %q:\n%s", s, all)
		}
	}
}

// TestScanGGUFTruncated: a GGUF cut in its data gets a format finding naming
// the cut tensors, which are skipped; the others are scanned.
func TestScanGGUFTruncated(t *testing.T) {
	g := &synth.GGUF{Tensors: []synth.GGUFTensor{
		{Name: "a", Type: ggml.Q4_0, Shape: []uint64{64}, Data: synth.QuantBlocks(ggml.Q4_0, 2, 1)},
		{Name: "b", Type: ggml.Q6_K, Shape: []uint64{256}, Data: synth.QuantBlocks(ggml.Q6_K, 1, 1)},
	}}
	b := g.Encode()
	p := filepath.Join(t.TempDir(), "cut.gguf")
	if err := os.WriteFile(p, b[:len(b)-100], 0o644); err != nil {
		t.Fatal(err)
	}
	res := scanPath(t, p)
	if res.Tensors[0].Skipped != "" || res.Tensors[0].Count != 64 || res.Tensors[1].Skipped == "" {
		t.Errorf("a: %+v\nb: %+v", res.Tensors[0], res.Tensors[1])
	}
	found := false
	for _, f := range res.Findings {
		found = found || (f.Check == CheckFormat && strings.Contains(f.Message, `the file ends before the data of 1 of 2 tensors: "b"`))
	}
	if !found || res.Healthy() {
		t.Errorf("findings %+v", res.Findings)
	}
}

// TestGGUFOutliersByRole: a Q8_0 layer scaled 1000× among its peers across
// blk.N is an outlier of its role.
func TestGGUFOutliersByRole(t *testing.T) {
	var ts []synth.GGUFTensor
	for i := 0; i < 8; i++ {
		d := synth.QuantBlocks(ggml.Q8_0, 16, uint64(i))
		if i == 5 {
			for b := 0; b < 16; b++ {
				synth.SetBlockScale(ggml.Q8_0, d, b, 0x5a00) // 192 instead of 1/64
			}
		}
		ts = append(ts, synth.GGUFTensor{Name: "blk." + string(rune('0'+i)) + ".ffn_up.weight", Type: ggml.Q8_0, Shape: []uint64{8, 64}, Data: d})
	}
	res := scanPath(t, writeGGUF(t, t.TempDir(), "m.gguf", &synth.GGUF{Tensors: ts}))
	found := false
	for _, f := range res.Findings {
		if f.Check == CheckOutlier && f.Tensor == "blk.5.ffn_up.weight" {
			found = true
		} else if f.Check == CheckOutlier {
			t.Errorf("unexpected outlier: %+v", f)
		}
	}
	if !found {
		t.Errorf("blk.5 not flagged: %+v", res.Findings)
	}
}

// FuzzBlockStats: the block kernel against the reference on arbitrary bytes
// of every block type.
func FuzzBlockStats(f *testing.F) {
	f.Add(uint8(12), synth.QuantBlocks(ggml.Q4_K, 2, 1))
	f.Add(uint8(8), []byte{0x00, 0x7e, 1, 2, 3})
	var types []ggml.Type
	for _, ty := range ggml.Types() {
		if ty.Blocked() {
			types = append(types, ty)
		}
	}
	f.Fuzz(func(t *testing.T, k uint8, data []byte) {
		dt, _ := formats.DTypeOfGGML(types[int(k)%len(types)])
		got, want := Stats(dt, data), ReferenceStats(dt, data)
		checkAcc(t, string(dt), got, want, 1e-9)
		if got.BadScales != want.BadScales || got.Undecoded != want.Undecoded {
			t.Fatalf("%s: bad scales %d/%d, undecoded %d/%d", dt, got.BadScales, want.BadScales, got.Undecoded, want.Undecoded)
		}
	})
}
