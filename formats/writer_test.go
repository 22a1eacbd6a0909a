package formats_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
)

// A random checkpoint for the property tests: tensors of any dtype, shapes of
// rank 0 to 3 with zero dimensions, names with quotes, escapes, controls and
// non-ASCII, and optional metadata.
type randomCheckpoint struct {
	specs []formats.TensorSpec
	data  tensorData
	md    map[string]string
}

var nameRunes = []rune("ab.z09_-/ \"\\\n\t\x00\x01\x1f\x7féß漢😀\u2028")

func randomName(rng *rand.Rand) string {
	n := rng.IntN(12)
	var sb strings.Builder
	for i := 0; i < n; i++ {
		sb.WriteRune(nameRunes[rng.IntN(len(nameRunes))])
	}
	return sb.String()
}

func genCheckpoint(rng *rand.Rand, dtypes []formats.DType) randomCheckpoint {
	rc := randomCheckpoint{data: tensorData{}}
	count := rng.IntN(9)
	seen := map[string]bool{"__metadata__": true}
	for len(rc.specs) < count {
		name := randomName(rng)
		if seen[name] {
			continue
		}
		d := dtypes[rng.IntN(len(dtypes))]
		var s formats.TensorSpec
		for {
			shape := make([]uint64, rng.IntN(4))
			for i := range shape {
				shape[i] = uint64(rng.IntN(6))
			}
			s = formats.TensorSpec{Name: name, DType: d, Shape: shape}
			if _, err := s.ByteLen(); err == nil {
				break // sub-byte dtypes need a whole number of bytes
			}
		}
		seen[name] = true
		n, _ := s.ByteLen()
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		rc.specs = append(rc.specs, s)
		rc.data[name] = b
	}
	switch rng.IntN(3) {
	case 1:
		rc.md = map[string]string{}
	case 2:
		rc.md = map[string]string{"format": "pt"}
		for i := rng.IntN(4); i > 0; i-- {
			rc.md[randomName(rng)] = randomName(rng)
		}
	}
	return rc
}

// checkRoundTrip reads file back and compares it with what was written.
func checkRoundTrip(t *testing.T, rc randomCheckpoint, file []byte) {
	t.Helper()
	h, err := readBytes(file)
	if err != nil {
		t.Fatalf("written file does not read back: %v", err)
	}
	if h.Len%8 != 0 || h.DataStart()%8 != 0 {
		t.Errorf("header length %d: data not 8-aligned", h.Len)
	}
	if len(h.Tensors) != len(rc.specs) {
		t.Fatalf("%d tensors read, %d written", len(h.Tensors), len(rc.specs))
	}
	byName := map[string]formats.TensorInfo{}
	for _, ti := range h.Tensors {
		byName[ti.Name] = ti
	}
	for _, s := range rc.specs {
		ti, ok := byName[s.Name]
		if !ok {
			t.Fatalf("tensor %q lost", s.Name)
		}
		if ti.DType != s.DType || fmt.Sprint(ti.Shape) != fmt.Sprint(s.Shape) {
			t.Errorf("%q: %s %v read, %s %v written", s.Name, ti.DType, ti.Shape, s.DType, s.Shape)
		}
		got := file[h.DataStart()+int64(ti.Begin) : h.DataStart()+int64(ti.End)]
		if !bytes.Equal(got, rc.data[s.Name]) {
			t.Errorf("%q: data differs", s.Name)
		}
	}
	// Data order is the reference writer's: dtype rank descending, then name.
	order := formats.PlanOrder(rc.specs)
	for i, ti := range h.Tensors {
		if ti.Name != order[i].Name {
			t.Errorf("tensor %d is %q, PlanOrder says %q", i, ti.Name, order[i].Name)
		}
	}
	if h.HasMetadata != (rc.md != nil) || len(h.Metadata) != len(rc.md) {
		t.Fatalf("metadata %v (present %v), wrote %v", h.Metadata, h.HasMetadata, rc.md)
	}
	for k, v := range rc.md {
		if h.Metadata[k] != v {
			t.Errorf("metadata %q = %q, wrote %q", k, h.Metadata[k], v)
		}
	}
}

func TestWriterRoundTripProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(2024, 11))
	for i := 0; i < 400; i++ {
		rc := genCheckpoint(rng, formats.AllDTypes())
		file := encode(t, rc.specs, rc.data, rc.md)
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkRoundTrip(t, rc, file) })
	}
}

// The writer sorts as the reference does: by dtype rank, descending, then by
// name in byte order.
func TestPlanOrder(t *testing.T) {
	specs := []formats.TensorSpec{
		{Name: "b", DType: formats.BOOL}, {Name: "a", DType: formats.F32}, {Name: "c", DType: formats.U64},
		{Name: "é", DType: formats.F32}, {Name: "Z", DType: formats.F32}, {Name: "x", DType: formats.F4},
		{Name: "y", DType: formats.F8_E5M2FNUZ}, {Name: "w", DType: formats.I16},
	}
	var got []string
	for _, s := range formats.PlanOrder(specs) {
		got = append(got, s.Name)
	}
	want := []string{"c", "Z", "a", "é", "w", "y", "x", "b"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("order %q, want %q", got, want)
	}
	if specs[0].Name != "b" {
		t.Error("PlanOrder modified its input")
	}
}

// serde_json escapes only '"', '\\' and control characters (short forms where
// JSON has them, else \u00xx in lower case); DEL, '/', HTML characters and
// U+2028 go through as they are.
func TestHeaderStringEscaping(t *testing.T) {
	name := "\"\\\b\f\n\r\t\x00\x0b\x1f\x7fé😀/<>&\u2028"
	header, _, err := formats.EncodeHeader([]formats.TensorSpec{{Name: name, DType: formats.U8, Shape: []uint64{0}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"\"\\\b\f\n\r\t\u0000\u000b\u001f` + "\x7fé😀/<>&\u2028" + `":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}`
	if got := strings.TrimRight(string(header), " "); got != want {
		t.Errorf("header\n%q\nwant\n%q", got, want)
	}
}

func TestWriterRefusesBadInput(t *testing.T) {
	cases := []struct {
		name  string
		specs []formats.TensorSpec
		kind  error
	}{
		{"duplicate names", []formats.TensorSpec{{Name: "a", DType: formats.U8}, {Name: "a", DType: formats.F32}}, formats.ErrDuplicateName},
		{"reserved name", []formats.TensorSpec{{Name: "__metadata__", DType: formats.U8}}, formats.ErrDuplicateName},
		{"invalid UTF-8 name", []formats.TensorSpec{{Name: "a\xff", DType: formats.U8}}, formats.ErrInvalidHeader},
		{"unknown dtype", []formats.TensorSpec{{Name: "a", DType: "F12"}}, formats.ErrWriteMismatch},
		{"C128, not a safetensors dtype", []formats.TensorSpec{{Name: "a", DType: formats.C128, Shape: []uint64{1}}}, formats.ErrWriteMismatch},
		{"F4 odd count", []formats.TensorSpec{{Name: "a", DType: formats.F4, Shape: []uint64{3}}}, formats.ErrMisalignedSlice},
		{"shape overflow", []formats.TensorSpec{{Name: "a", DType: formats.U8, Shape: []uint64{1 << 32, 1 << 32}}}, formats.ErrValidationOverflow},
		{"bits overflow", []formats.TensorSpec{{Name: "a", DType: formats.F64, Shape: []uint64{1 << 61}}}, formats.ErrValidationOverflow},
		{"total overflows", []formats.TensorSpec{{Name: "a", DType: formats.U8, Shape: []uint64{1 << 63}}, {Name: "b", DType: formats.U8, Shape: []uint64{1 << 63}}}, formats.ErrValidationOverflow},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			_, err := formats.NewWriter(&buf, c.specs, nil)
			if !errors.Is(err, c.kind) {
				t.Fatalf("got %v, want %v", err, c.kind)
			}
			if buf.Len() != 0 {
				t.Errorf("%d bytes written before the error", buf.Len())
			}
		})
	}
	for _, md := range []map[string]string{{"a\xff": "b"}, {"a": "b\xff"}} {
		if _, _, err := formats.EncodeHeader(nil, md); !errors.Is(err, formats.ErrInvalidHeader) {
			t.Errorf("metadata %q: %v", md, err)
		}
	}
}

func TestWriterStreamingDiscipline(t *testing.T) {
	specs := []formats.TensorSpec{{Name: "a", DType: formats.F32, Shape: []uint64{2}}, {Name: "b", DType: formats.U8, Shape: []uint64{3}}}
	newW := func() *formats.Writer {
		w, err := formats.NewWriter(&bytes.Buffer{}, specs, nil)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	if err := newW().WriteTensor("b", bytes.NewReader(make([]byte, 3))); !errors.Is(err, formats.ErrWriteMismatch) {
		t.Errorf("out of order: %v", err)
	}
	if err := newW().WriteTensor("a", bytes.NewReader(make([]byte, 7))); !errors.Is(err, formats.ErrWriteMismatch) {
		t.Errorf("short data: %v", err)
	}
	w := newW()
	if err := w.WriteTensor("a", bytes.NewReader(make([]byte, 100))); err != nil { // longer source: only 8 bytes taken
		t.Errorf("long source: %v", err)
	}
	if err := w.Close(); !errors.Is(err, formats.ErrWriteMismatch) {
		t.Errorf("close with b unwritten: %v", err)
	}
	if err := w.WriteTensor("b", bytes.NewReader(make([]byte, 3))); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if _, err := w.Write([]byte{1}); !errors.Is(err, formats.ErrWriteMismatch) {
		t.Errorf("write past the end: %v", err)
	}
	if w.DataLen() != 11 {
		t.Errorf("DataLen %d", w.DataLen())
	}
}

// The 100 MB cap readers enforce is enforced when writing, to the byte.
func TestWriterHeaderCap(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a few hundred MB")
	}
	// {"__metadata__":{"k":"<v>"}} is 25 bytes plus v.
	atCap := strings.Repeat("v", formats.MaxHeaderSize-25)
	header, _, err := formats.EncodeHeader(nil, map[string]string{"k": atCap})
	if err != nil || len(header) != formats.MaxHeaderSize {
		t.Fatalf("header of exactly the cap: %d bytes, %v", len(header), err)
	}
	// (The reader's side of the boundary, N = 1e8 accepted and 1e8+1 refused,
	// is TestRuleOrder's.)
	var buf bytes.Buffer
	if _, err := formats.NewWriter(&buf, nil, map[string]string{"k": atCap + "v"}); !errors.Is(err, formats.ErrHeaderTooBig) || buf.Len() != 0 {
		t.Errorf("one byte over (padded to 8 over): %v, %d bytes written", err, buf.Len())
	}
	long := strings.Repeat("n", formats.MaxHeaderSize)
	if _, _, err := formats.EncodeHeader([]formats.TensorSpec{{Name: long, DType: formats.U8}}, nil); !errors.Is(err, formats.ErrHeaderTooBig) {
		t.Errorf("long tensor name: %v", err)
	}
}

// Files the reference (Rust) writer produced, re-serialized with NewWriter,
// must come out byte for byte identical. Each qualifies by construction: a
// header padded with spaces to a multiple of 8, tensors in dtype-then-name
// order, and at most one __metadata__ key or keys that happen to be sorted (the
// reference writes metadata from a Rust HashMap, whose order is random).
var referenceWritten = []string{
	"FluxML__SafeTensors.jl/test/non_sharded/model.safetensors",
	"FluxML__SafeTensors.jl/test/non_sharded/model.numpy.safetensors",
	"FluxML__SafeTensors.jl/test/non_sharded/model.with_metadata.safetensors",
	"FluxML__SafeTensors.jl/test/sharded/model-00001-of-00006.safetensors",
	"FluxML__SafeTensors.jl/test/sharded/model-00003-of-00006.safetensors",
	"FluxML__SafeTensors.jl/test/sharded/model-00006-of-00006.safetensors",
	"JunSuzukiJapan__tl/@962514214a/model_2digit.safetensors",
	"JunSuzukiJapan__tl/@b77a867ed0/model.safetensors",
	"MuzammelMokhtar__HIGH-PERFORMANCE-INFERENCE-ENGINE-USING-QWEN-2.5/lora_adapter/adapter_model.safetensors",
	"Narsil__safetensors_distributed/@9dae8bdf3c/test.safetensors",
	"Tashu014__lora-imdb-distilbert/adapter_model.safetensors",
	"foundation-model-stack__fastsafetensors/examples/a.safetensors",
	"huggingface__candle/candle-examples/examples/csm/voices.safetensors",
	"huggingface__lerobot/@7626b9a4a3/tests/data/save_dataset_to_safetensors/lerobot/pusht/frame_0.safetensors",
	"huggingface__lerobot/@e75448c8c4/tests/data/save_policy_to_safetensors/aloha_act/param_stats.safetensors",
	"kako-jun__diffai/@adffa46380/to-migrate/deprecated/tests-old/fixtures/ml_models/normal_model.safetensors",
	"linmx0130__ndarray_safetensors/data/from_rust.safetensors",
	"mlverse__safetensors/tests/testthat/safetensors/hello.safetensors",
	"mycguo__fine-tune-ai-model/fine_tuned_model/adapter_model.safetensors",
	"ollama__ollama/@4b8460d1a7/convert/testdata/minicpm3-4b/model.safetensors",
	"pytorch__torchtune/@2b0f6c1e68/gemma_hf_checkpoint.safetensors",
	"qwerty-aditya__rick_and_morty_LoRA/pytorch_lora_weights.safetensors",
	"shibbir24__Smart-Review-AI/lora_adapter/checkpoint-5000/adapter_model.safetensors",
	"syoyo__safetensors-cpp/gen/model.safetensors",
	"tmanabe__safetensors-java/src/test/resources/sample.safetensors",
	"ttekcor__Embedding_stable_diffusion/learned_embeds.safetensors",
}

func TestByteIdenticalToReferenceWriter(t *testing.T) {
	root := realdataDir(t)
	for _, rel := range referenceWritten {
		t.Run(rel, func(t *testing.T) {
			orig, err := os.ReadFile(filepath.Join(root, rel))
			if err != nil {
				t.Fatal(err)
			}
			h, err := readBytes(orig)
			if err != nil {
				t.Fatal(err)
			}
			// The qualification, checked on the file itself.
			text := orig[8:h.DataStart()]
			trimmed := bytes.TrimRight(text, " ")
			if len(text)%8 != 0 || len(text)-len(trimmed) >= 8 || !bytes.HasSuffix(trimmed, []byte("}")) {
				t.Fatalf("not padded like the reference writer: %q", text[max(0, len(text)-12):])
			}
			var specs []formats.TensorSpec
			data := tensorData{}
			for _, ti := range h.Tensors {
				specs = append(specs, formats.TensorSpec{Name: ti.Name, DType: ti.DType, Shape: ti.Shape})
				data[ti.Name] = orig[h.DataStart()+int64(ti.Begin) : h.DataStart()+int64(ti.End)]
			}
			var md map[string]string
			if h.HasMetadata {
				md = h.Metadata
			}
			again := encode(t, specs, data, md)
			if !bytes.Equal(again, orig) {
				i := 0
				for i < min(len(again), len(orig)) && again[i] == orig[i] {
					i++
				}
				t.Fatalf("differs at byte %d of %d:\n ours %q\n ref  %q", i, len(orig),
					again[max(0, i-20):min(len(again), i+40)], orig[max(0, i-20):min(len(orig), i+40)])
			}
		})
	}
}

// Files the reference writer did not produce (or produced with metadata in
// HashMap order) cannot be byte-identical, but still round-trip in content.
func TestRewriteOtherWritersKeepsContent(t *testing.T) {
	root := realdataDir(t)
	for _, rel := range []string{
		"CoffeeVampir3__Model-Saving-Test-Repo/model.safetensors",                              // metadata keys unsorted
		"promptfoo__modelaudit/tests/assets/samples/safetensors/multiple_patterns.safetensors", // metadata keys unsorted
		"huggingface__safetensors/@bd71d434a6/samples/overall.safetensors",                     // 2022: unpadded, name order
		"jkrukowski__swift-safetensors/Tests/SafetensorsTests/data.safetensors",                // unpadded
		"ollama__ollama/@120061a11e/convert/testdata/adapters/discollama/adapters.safetensors", // MLX: null metadata, key order
	} {
		t.Run(rel, func(t *testing.T) {
			orig, err := os.ReadFile(filepath.Join(root, rel))
			if err != nil {
				t.Fatal(err)
			}
			h, err := readBytes(orig)
			if err != nil {
				t.Fatal(err)
			}
			rc := randomCheckpoint{data: tensorData{}}
			for _, ti := range h.Tensors {
				rc.specs = append(rc.specs, formats.TensorSpec{Name: ti.Name, DType: ti.DType, Shape: ti.Shape})
				rc.data[ti.Name] = orig[h.DataStart()+int64(ti.Begin) : h.DataStart()+int64(ti.End)]
			}
			if h.Metadata != nil {
				rc.md = h.Metadata
			}
			again := encode(t, rc.specs, rc.data, rc.md)
			checkRoundTrip(t, rc, again)
		})
	}
}
