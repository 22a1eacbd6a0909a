package formats_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/formats/ggml"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// sampleGGUF is a small valid GGUF with every metadata type and three tensors.
func sampleGGUF() *synth.GGUF {
	return &synth.GGUF{
		KV: []synth.KV{
			{Key: "general.architecture", Value: "llama"},
			{Key: "llama.context_length", Value: uint32(4096)},
			{Key: "u8", Value: uint8(7)}, {Key: "i8", Value: int8(-7)}, {Key: "u16", Value: uint16(700)}, {Key: "i16", Value: int16(-700)},
			{Key: "i32", Value: int32(-70000)}, {Key: "f32", Value: float32(0.5)}, {Key: "b", Value: true}, {Key: "u64", Value: uint64(1 << 40)},
			{Key: "i64", Value: int64(-1 << 40)}, {Key: "f64", Value: 2.25},
			{Key: "tokenizer.ggml.model", Value: "llama"},
			{Key: "tokenizer.ggml.tokens", Value: []string{"<unk>", "<s>", "</s>", "a", "b", "c", "d", "e", "f", "g"}},
			{Key: "nested", Value: []any{[]int32{1, 2}, []int32{3}}},
		},
		Tensors: []synth.GGUFTensor{
			{Name: "token_embd.weight", Type: ggml.F16, Shape: []uint64{3, 8}},
			{Name: "blk.0.attn_q.weight", Type: ggml.Q4_K, Shape: []uint64{2, 256}, Data: synth.QuantBlocks(ggml.Q4_K, 2, 1)},
			{Name: "output_norm.weight", Type: ggml.F32, Shape: []uint64{5}},
		},
	}
}

func readGGUFBytes(t *testing.T, b []byte) *formats.File {
	t.Helper()
	p := writeFile(t, t.TempDir(), "m.gguf", b)
	f, err := formats.ReadFileHeader(p, "m.gguf")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestGGUFValid(t *testing.T) {
	f := readGGUFBytes(t, sampleGGUF().Encode())
	if f.Err != nil || len(f.Problems) != 0 {
		t.Fatalf("valid file: %v %v", f.Err, f.Problems)
	}
	h := f.GGUF
	if f.Format() != formats.ContainerGGUF || h.Version != 3 || h.Architecture() != "llama" {
		t.Fatalf("header %+v", h)
	}
	if n, ok := h.ContextLength(); !ok || n != 4096 {
		t.Errorf("context length %d %v", n, ok)
	}
	if s := h.TokenizerSummary(); s != "model llama, 10 tokens" {
		t.Errorf("tokenizer %q", s)
	}
	for key, want := range map[string]string{"u8": "7", "i8": "-7", "u16": "700", "i16": "-700", "i32": "-70000", "f32": "0.5",
		"b": "true", "u64": "1099511627776", "i64": "-1099511627776", "f64": "2.25", "nested": "[2 × ARRAY: [2 × INT32: 1, 2], [1 × INT32: 3]]",
		"tokenizer.ggml.tokens": `[10 × STRING: "<unk>", "<s>", "</s>", "a", "b", "c", "d", "e", …]`} {
		v, ok := h.Get(key)
		if !ok || v.String() != want {
			t.Errorf("%s = %s, want %s", key, v.String(), want)
		}
	}
	ts := f.Tensors()
	if len(ts) != 3 {
		t.Fatalf("%d tensors", len(ts))
	}
	wantT := []struct {
		name  string
		dt    formats.DType
		shape []uint64
		begin uint64
		n     uint64
	}{
		{"token_embd.weight", formats.F16, []uint64{3, 8}, 0, 48},
		{"blk.0.attn_q.weight", "Q4_K", []uint64{2, 256}, 64, 288},
		{"output_norm.weight", formats.F32, []uint64{5}, 352, 20},
	}
	for i, w := range wantT {
		got := ts[i]
		if got.Name != w.name || got.DType != w.dt || !slices.Equal(got.Shape, w.shape) || got.Begin != w.begin || got.End-got.Begin != w.n || got.Cut ||
			got.Offset != h.DataStart+int64(w.begin) {
			t.Errorf("tensor %d: %+v (offset %d), want %+v", i, got.TensorInfo, got.Offset, w)
		}
	}
	if !formats.DType("Q4_K").IsBlock() || formats.DType("Q4_K").Valid() || formats.DType("Q4_K").Kind() != formats.KindBlock {
		t.Error("Q4_K must be a block dtype and not a safetensors dtype")
	}
}

// ggufErr reads b and returns every problem message, failing unless one
// matches kind and mentions want.
func ggufErr(t *testing.T, b []byte, kind error, want string) *formats.File {
	t.Helper()
	f := readGGUFBytes(t, b)
	if f.Err == nil {
		t.Fatalf("no error (want %q)", want)
	}
	var msgs []string
	found := false
	for _, p := range append([]formats.Problem{{Severity: formats.SevError, Err: f.Err.(*formats.Error)}}, f.Problems...) {
		msgs = append(msgs, p.Err.Error())
		if errors.Is(p.Err, kind) && strings.Contains(p.Err.Error(), want) {
			found = true
		}
	}
	if !found {
		t.Errorf("want %v mentioning %q, got %q", kind, want, msgs)
	}
	return f
}

func TestGGUFMalformed(t *testing.T) {
	good := sampleGGUF().Encode()
	set := func(b []byte, off int, v ...byte) []byte { c := bytes.Clone(b); copy(c[off:], v); return c }
	t.Run("big-endian", func(t *testing.T) { ggufErr(t, set(good, 4, 0, 0, 0, 3), formats.ErrGGUF, "big-endian") })
	t.Run("version 1", func(t *testing.T) { ggufErr(t, set(good, 4, 1, 0, 0, 0), formats.ErrGGUF, "version 1") })
	t.Run("version 9", func(t *testing.T) {
		ggufErr(t, set(good, 4, 9, 0, 0, 0), formats.ErrGGUF, "unsupported GGUF version 9")
	})
	t.Run("draft magic", func(t *testing.T) { ggufErr(t, set(good, 0, 'F', 'U', 'G', 'G'), formats.ErrGGUF, "FUGG") })
	t.Run("text under a .gguf name", func(t *testing.T) {
		ggufErr(t, []byte("Repository not found"), formats.ErrGGUF, `not a GGUF file: it does not start with "GGUF"; it holds text`)
	})
	t.Run("absurd tensor count", func(t *testing.T) {
		g := sampleGGUF()
		g.TensorCount = 1 << 60
		ggufErr(t, g.Encode(), formats.ErrGGUF, "claims 1152921504606846976 tensors")
	})
	t.Run("absurd metadata count", func(t *testing.T) {
		g := sampleGGUF()
		g.KVCount = 1<<64 - 1
		ggufErr(t, g.Encode(), formats.ErrGGUF, "metadata pairs")
	})
	t.Run("tensor count without infos", func(t *testing.T) {
		g := &synth.GGUF{TensorCount: 1}
		b := append(g.Encode(), 0, 0, 0xc0, 0x3f, 0, 0, 0, 0x40, 0, 0, 0, 0xbf)
		ggufErr(t, b, formats.ErrGGUF, "tensors")
	})
	t.Run("absurd array length", func(t *testing.T) {
		g := &synth.GGUF{KV: []synth.KV{{Key: "a", Value: []uint32{1, 2}}}}
		b := g.Encode()
		i := bytes.Index(b, []byte{4, 0, 0, 0, 2, 0, 0, 0})
		ggufErr(t, set(b, i+4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f), formats.ErrGGUF, "claims 1152921504606846975 elements")
	})
	t.Run("absurd string length", func(t *testing.T) {
		g := &synth.GGUF{KV: []synth.KV{{Key: "k", Value: "v"}}}
		b := g.Encode()
		ggufErr(t, set(b, 24, 0, 0, 0, 0, 0, 0, 0, 0x40), formats.ErrGGUF, "claims 4611686018427387904 bytes")
	})
	t.Run("duplicate key and name", func(t *testing.T) {
		g := sampleGGUF()
		g.KV = append(g.KV, synth.KV{Key: "u8", Value: uint8(1)})
		g.Tensors[2].Name = g.Tensors[0].Name
		f := ggufErr(t, g.Encode(), formats.ErrGGUF, `metadata key "u8" appears more than once`)
		found := false
		for _, p := range f.Problems {
			found = found || errors.Is(p.Err, formats.ErrDuplicateName)
		}
		if !found && !errors.Is(f.Err, formats.ErrDuplicateName) {
			t.Error("duplicate tensor name not reported")
		}
	})
	t.Run("unknown and removed types", func(t *testing.T) {
		g := sampleGGUF()
		g.Tensors[0].Type = 43
		g.Tensors[2].Type = 31
		f := ggufErr(t, g.Encode(), formats.ErrGGUF, "ggml type id 43 is unknown type 43")
		if len(f.Tensors()) != 3 || f.Tensors()[0].DType.Known() {
			t.Errorf("tensors %v", f.Tensors())
		}
		ggufErr(t, g.Encode(), formats.ErrGGUF, "Q4_0_4_4 (type 31, removed from GGUF)")
	})
	t.Run("misaligned, overlapping, gap, wrapping offsets", func(t *testing.T) {
		for _, c := range []struct {
			off  uint64
			want string
		}{{70, "not a multiple of the alignment 32"}, {32, "overlaps the previous tensor"}, {128, "leaves a gap"}, {1<<64 - 32, "file ends before"}} {
			g := sampleGGUF()
			g.Tensors[1].Offset = &c.off
			kind := formats.ErrInvalidOffset
			if strings.Contains(c.want, "ends") {
				kind = formats.ErrTruncated
			}
			ggufErr(t, g.Encode(), kind, c.want)
		}
	})
	t.Run("bad dimensions", func(t *testing.T) {
		g := sampleGGUF()
		g.Tensors[1].Shape = []uint64{2, 100}
		ggufErr(t, g.Encode(), formats.ErrGGUF, "ne[0] = 100 is not a multiple of Q4_K's 256-element block")
		g = sampleGGUF()
		g.Tensors[0].Shape = []uint64{1, 1, 1, 1, 8}
		ggufErr(t, g.Encode(), formats.ErrGGUF, "5 dimensions")
		g = sampleGGUF()
		g.Tensors[2].Shape = []uint64{1 << 40, 1 << 40}
		ggufErr(t, g.Encode(), formats.ErrValidationOverflow, "overflow")
	})
	t.Run("long name", func(t *testing.T) {
		g := sampleGGUF()
		g.Tensors[2].Name = strings.Repeat("x", 64)
		ggufErr(t, g.Encode(), formats.ErrGGUF, "tensor name is 64 bytes")
	})
	t.Run("alignment", func(t *testing.T) {
		g := sampleGGUF()
		g.Alignment = 64
		f := readGGUFBytes(t, g.Encode())
		if f.Err != nil || f.GGUF.Alignment != 64 || f.GGUF.DataStart%64 != 0 || f.Tensors()[1].Begin != 64 {
			t.Errorf("alignment 64: %v %+v", f.Err, f.GGUF)
		}
		g.KV = append(g.KV, synth.KV{Key: "x", Value: 1})
	})
	t.Run("bad alignment", func(t *testing.T) {
		g := sampleGGUF()
		g.KV = append(g.KV, synth.KV{Key: "general.alignment", Value: uint32(48)})
		ggufErr(t, g.Encode(), formats.ErrGGUF, "not a power of two")
		g = sampleGGUF()
		g.KV = append(g.KV, synth.KV{Key: "general.alignment", Value: uint64(32)})
		ggufErr(t, g.Encode(), formats.ErrGGUF, "requires a UINT32")
	})
}

// TestGGUFTruncatedEverywhere cuts a valid file at every length: never a
// panic; a cut inside the header is a truncation, a cut in the data names the
// tensors cut.
func TestGGUFTruncatedEverywhere(t *testing.T) {
	good := sampleGGUF().Encode()
	full := readGGUFBytes(t, good)
	dataStart := int(full.GGUF.DataStart)
	dir := t.TempDir()
	for n := 0; n < len(good); n++ {
		p := writeFile(t, dir, "cut.gguf", good[:n])
		f, err := formats.ReadFileHeader(p, "cut.gguf")
		if err != nil {
			t.Fatal(err)
		}
		if f.Err == nil {
			// Only the padding after the last tensor may go.
			if n < len(good)-12 {
				t.Fatalf("cut at %d of %d: no error", n, len(good))
			}
			continue
		}
		if !errors.Is(f.Err, formats.ErrTruncated) && !errors.Is(f.Err, formats.ErrGGUF) {
			t.Fatalf("cut at %d: %v", n, f.Err)
		}
		if n >= dataStart && !strings.Contains(f.Err.Error(), "output_norm.weight") {
			t.Fatalf("cut at %d in the data: %v", n, f.Err)
		}
	}
}

func TestSafetensorsRefusesBlockDType(t *testing.T) {
	_, err := readBytes(rawFile(`{"w":{"dtype":"Q4_K","shape":[256],"data_offsets":[0,144]}}`, make([]byte, 144)))
	if err == nil {
		t.Fatal("a safetensors header naming Q4_K was accepted")
	}
	if _, err := formats.NewWriter(&bytes.Buffer{}, []formats.TensorSpec{{Name: "w", DType: "Q4_K", Shape: []uint64{256}}}, nil); err == nil {
		t.Fatal("the safetensors writer accepted Q4_K")
	}
}

func FuzzGGUF(f *testing.F) {
	f.Add(sampleGGUF().Encode())
	f.Add([]byte("GGUF\x03\x00\x00\x00"))
	f.Add((&synth.GGUF{KV: []synth.KV{{Key: "n", Value: []any{[]any{[]uint8{1}}}}}}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		h, probs := formats.ReadGGUF("fuzz.gguf", bytes.NewReader(b), int64(len(b)))
		if h == nil && len(probs) == 0 {
			t.Fatal("no header and no problem")
		}
		for _, p := range probs {
			if p.Err == nil || p.Err.Error() == "" {
				t.Fatal("empty problem")
			}
		}
		if h != nil && (h.DataStart < h.InfoEnd || h.InfoEnd > int64(len(b))) {
			t.Fatalf("data start %d, info end %d, size %d", h.DataStart, h.InfoEnd, len(b))
		}
	})
}
