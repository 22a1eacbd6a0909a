package formats_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
)

// The reference reader's own test cases (safetensors/src/tensor.rs), ported:
// each malformed input must fail with the sentinel of the rule it breaks.
func TestReferenceMalformedCases(t *testing.T) {
	tenAliased := func() string {
		var parts []string
		for i := 0; i < 10; i++ {
			parts = append(parts, fmt.Sprintf(`"weight_%d":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}`, i))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}()
	i32 := `{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}`
	cases := []struct {
		name  string
		file  []byte
		kinds []error
	}{
		{"empty file", nil, []error{formats.ErrHeaderTooSmall}},
		{"7 bytes", []byte("\x01\x00\x00\x00\x00\x00\x00"), []error{formats.ErrHeaderTooSmall}},
		{"8-byte prefix only", []byte("<\x00\x00\x00\x00\x00\x00\x00"), []error{formats.ErrInvalidHeaderLength}},
		{"length with high bytes set", append([]byte("<\x00\x00\x00\x00\xff\xff\xff"), i32...), []error{formats.ErrHeaderTooLarge}},
		{"header byte 0xff", []byte("\x01\x00\x00\x00\x00\x00\x00\x00\xff"), []error{formats.ErrInvalidHeader}},
		{"header {", []byte("\x01\x00\x00\x00\x00\x00\x00\x00{"), []error{formats.ErrInvalidHeaderDeserialization}},
		{"10 tensors at (0,16)", rawFile(tenAliased, make([]byte, 16)), []error{formats.ErrInvalidOffset}},
		{"[2,2] I32 at [0,4]", rawFile(`{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,4]}}`, make([]byte, 4)),
			[]error{formats.ErrTensorInvalidInfo}},
		{"shape [2, 2^64-2]", rawFile(`{"test":{"dtype":"I32","shape":[2,18446744073709551614],"data_offsets":[0,16]}}`, make([]byte, 16)),
			[]error{formats.ErrValidationOverflow}},
		{"data 2 bytes short", rawFile(i32, make([]byte, 14)), []error{formats.ErrMetadataIncompleteBuffer, formats.ErrTruncated}},
		{"4 junk bytes appended", rawFile(i32, make([]byte, 20)), []error{formats.ErrMetadataIncompleteBuffer, formats.ErrTrailingBytes}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := readBytes(c.file)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, k := range c.kinds {
				if !errors.Is(err, k) {
					t.Errorf("error %v is not %v", err, k)
				}
			}
			fe := asError(t, err)
			if fe.File != "test.safetensors" {
				t.Errorf("error does not name the file: %q", fe.File)
			}
		})
	}
}

func TestReferenceValidCases(t *testing.T) {
	cases := []struct {
		name    string
		file    []byte
		tensors int
	}{
		{"{} padded with whitespace", rawFile("\r \t\n{}\r\n \t", nil), 0},
		{"scalar shape []", rawFile(`{"test":{"dtype":"I32","shape":[],"data_offsets":[0,4]}}`, make([]byte, 4)), 1},
		{"zero-size [2,0] at [0,0]", rawFile(`{"test":{"dtype":"I32","shape":[2,0],"data_offsets":[0,0]}}`, nil), 1},
		{"empty header {}", rawFile("{}", nil), 0},
		{"padded with spaces", rawFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}   `, []byte{7}), 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := readBytes(c.file)
			if err != nil {
				t.Fatal(err)
			}
			if len(h.Tensors) != c.tensors {
				t.Fatalf("%d tensors, want %d", len(h.Tensors), c.tensors)
			}
		})
	}
	h, _ := readBytes(rawFile(`{"test":{"dtype":"I32","shape":[],"data_offsets":[0,4]}}`, make([]byte, 4)))
	if n := h.Tensors[0].Numel(); n != 1 {
		t.Errorf("scalar numel %d, want 1", n)
	}
	h, _ = readBytes(rawFile(`{"test":{"dtype":"I32","shape":[2,0],"data_offsets":[0,0]}}`, nil))
	if n := h.Tensors[0].Numel(); n != 0 {
		t.Errorf("zero-size numel %d, want 0", n)
	}
}

// Rule 5: what the reference's serde_json deserialization refuses.
func TestHeaderDeserializationRejects(t *testing.T) {
	ok := `"dtype":"U8","shape":[2],"data_offsets":[0,2]`
	cases := map[string]string{
		"unknown dtype":                 `{"a":{"dtype":"F12","shape":[2],"data_offsets":[0,2]}}`,
		"C128, not a safetensors dtype": `{"a":{"dtype":"C128","shape":[1],"data_offsets":[0,16]}}`,
		"dtype in lower case":           `{"a":{"dtype":"u8","shape":[2],"data_offsets":[0,2]}}`,
		"dtype not a string":            `{"a":{"dtype":8,"shape":[2],"data_offsets":[0,2]}}`,
		"missing dtype":                 `{"a":{"shape":[2],"data_offsets":[0,2]}}`,
		"missing shape":                 `{"a":{"dtype":"U8","data_offsets":[0,2]}}`,
		"missing data_offsets":          `{"a":{"dtype":"U8","shape":[2]}}`,
		"duplicate field":               `{"a":{"dtype":"U8","dtype":"U8","shape":[2],"data_offsets":[0,2]}}`,
		"negative dimension":            `{"a":{"dtype":"U8","shape":[-2],"data_offsets":[0,2]}}`,
		"minus zero":                    `{"a":{"dtype":"U8","shape":[-0],"data_offsets":[0,0]}}`,
		"float dimension":               `{"a":{"dtype":"U8","shape":[2.0],"data_offsets":[0,2]}}`,
		"exponent dimension":            `{"a":{"dtype":"U8","shape":[2e0],"data_offsets":[0,2]}}`,
		"dimension beyond 64 bits":      `{"a":{"dtype":"U8","shape":[18446744073709551616],"data_offsets":[0,2]}}`,
		"offset beyond 64 bits":         `{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,18446744073709551617]}}`,
		"string dimension":              `{"a":{"dtype":"U8","shape":["2"],"data_offsets":[0,2]}}`,
		"null dimension":                `{"a":{"dtype":"U8","shape":[null],"data_offsets":[0,2]}}`,
		"shape not an array":            `{"a":{"dtype":"U8","shape":2,"data_offsets":[0,2]}}`,
		"one offset":                    `{"a":{"dtype":"U8","shape":[2],"data_offsets":[2]}}`,
		"three offsets":                 `{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2,2]}}`,
		"tensor info null":              `{"a":null}`,
		"tensor info a number":          `{"a":1}`,
		"null header":                   `null`,
		"array header":                  `[]`,
		"string header":                 `"a"`,
		"number header":                 `1`,
		"blank header":                  `   `,
		"trailing NUL":                  "{\"a\":{" + ok + "}}\x00",
		"trailing NULs as padding":      "{\"a\":{" + ok + "}}\x00\x00\x00\x00",
		"trailing text":                 "{\"a\":{" + ok + "}}x",
		"two objects":                   "{\"a\":{" + ok + "}}{}",
		"duplicate __metadata__":        `{"__metadata__":{"a":"b"},"__metadata__":{"c":"d"},"a":{` + ok + `}}`,
		"duplicate null __metadata__":   `{"__metadata__":null,"__metadata__":null,"a":{` + ok + `}}`,
		"metadata value a number":       `{"__metadata__":{"a":1},"a":{` + ok + `}}`,
		"metadata value null":           `{"__metadata__":{"a":null},"a":{` + ok + `}}`,
		"metadata value an object":      `{"__metadata__":{"a":{}},"a":{` + ok + `}}`,
		"metadata an array":             `{"__metadata__":["a"],"a":{` + ok + `}}`,
		"unterminated":                  `{"a":{` + ok,
		"unpaired high surrogate":       `{"a\ud800":{` + ok + `}}`,
		"unpaired low surrogate":        `{"a\udc00":{` + ok + `}}`,
		"reversed surrogate pair":       `{"a\udc00\ud800":{` + ok + `}}`,
		"surrogate in metadata":         `{"__metadata__":{"k":"\ud83d"},"a":{` + ok + `}}`,
		"raw control character":         "{\"a\x01\":{" + ok + "}}",
		"byte order mark":               "\ufeff{\"a\":{" + ok + "}}",
		"nested 128 deep in extra key":  `{"a":{` + ok + `,"x":` + strings.Repeat("[", 126) + strings.Repeat("]", 126) + `}}`,
	}
	for name, header := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := readBytes(rawFile(header, []byte{1, 2}))
			if !errors.Is(err, formats.ErrInvalidHeaderDeserialization) {
				t.Fatalf("got %v, want ErrInvalidHeaderDeserialization", err)
			}
			if fe := asError(t, err); fe.Offset < 8 || fe.Offset > int64(8+len(header)) {
				t.Errorf("offset %d outside the header [8, %d]", fe.Offset, 8+len(header))
			}
		})
	}
}

// What the reference accepts although a stricter parser might not.
func TestHeaderDeserializationAccepts(t *testing.T) {
	ok := `"dtype":"U8","shape":[2],"data_offsets":[0,2]`
	cases := map[string]string{
		"extra tensor keys ignored":    `{"a":{"dtype":"U8","extra":{"x":[1,{"y":null}]},"shape":[2],"note":"hi","data_offsets":[0,2]}}`,
		"fields in any order":          `{"a":{"data_offsets":[0,2],"shape":[2],"dtype":"U8"}}`,
		"null __metadata__":            `{"__metadata__":null,"a":{` + ok + `}}`,
		"empty __metadata__":           `{"__metadata__":{},"a":{` + ok + `}}`,
		"metadata after the tensors":   `{"a":{` + ok + `},"__metadata__":{"format":"pt"}}`,
		"duplicate metadata key":       `{"__metadata__":{"k":"1","k":"2"},"a":{` + ok + `}}`,
		"whitespace everywhere":        " \n{ \"a\" :\t{ \"dtype\" : \"U8\" , \"shape\" : [ 2 ] , \"data_offsets\" : [ 0 , 2 ] } }\r\n",
		"surrogate pair":               `{"a\ud83d\ude00":{` + ok + `}}`,
		"escapes in names":             `{"a\"\\\/\b\f\n\r\t\u0041":{` + ok + `}}`,
		"nested 127 deep in extra key": `{"a":{` + ok + `,"x":` + strings.Repeat("[", 125) + strings.Repeat("]", 125) + `}}`,
		"brackets inside strings":      `{"a[{":{` + ok + `,"x":"` + strings.Repeat("[", 300) + `"}}`,
	}
	for name, header := range cases {
		t.Run(name, func(t *testing.T) {
			h, err := readBytes(rawFile(header, []byte{1, 2}))
			if err != nil {
				t.Fatal(err)
			}
			if len(h.Tensors) != 1 || h.Tensors[0].DType != formats.U8 || len(h.Tensors[0].Shape) != 1 || h.Tensors[0].Shape[0] != 2 {
				t.Fatalf("tensors %+v", h.Tensors)
			}
		})
	}
	h, _ := readBytes(rawFile(`{"a\ud83d\ude00":{`+ok+`}}`, []byte{1, 2}))
	if h.Tensors[0].Name != "a\U0001F600" {
		t.Errorf("surrogate pair decoded as %q", h.Tensors[0].Name)
	}
	h, _ = readBytes(rawFile(`{"__metadata__":{"k":"1","k":"2"},"a":{`+ok+`}}`, []byte{1, 2}))
	if h.Metadata["k"] != "2" {
		t.Errorf("duplicate metadata key: got %q, want the last value", h.Metadata["k"])
	}
	h, _ = readBytes(rawFile(`{"__metadata__":null,"a":{`+ok+`}}`, []byte{1, 2}))
	if !h.HasMetadata || h.Metadata != nil {
		t.Errorf("null __metadata__: HasMetadata %v, Metadata %v", h.HasMetadata, h.Metadata)
	}
}

// Rule 6: offsets must tile the data section; the error names the tensor.
func TestOffsetErrorsNameTheTensor(t *testing.T) {
	cases := []struct {
		name   string
		header string
		data   int
		tensor []string // acceptable names
	}{
		{"gap", `{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}`, 6, []string{"b"}},
		{"overlap", `{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}`, 6, []string{"b"}},
		{"aliasing", `{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}`, 4, []string{"a", "b"}},
		{"first not at 0", `{"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}`, 4, []string{"a"}},
		{"end before begin", `{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"c":{"dtype":"U8","shape":[0],"data_offsets":[2,1]}}`, 2, []string{"c"}},
		{"huge begin", `{"a":{"dtype":"U8","shape":[2],"data_offsets":[18446744073709551613,18446744073709551615]}}`, 2, []string{"a"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := readBytes(rawFile(c.header, make([]byte, c.data)))
			if !errors.Is(err, formats.ErrInvalidOffset) {
				t.Fatalf("got %v, want ErrInvalidOffset", err)
			}
			fe := asError(t, err)
			found := false
			for _, n := range c.tensor {
				found = found || fe.Tensor == n
			}
			if !found {
				t.Errorf("error names tensor %q, want one of %v", fe.Tensor, c.tensor)
			}
		})
	}
}

// Rule 7 and the order of rules 6-7 within a tensor, and across tensors.
func TestSizeRules(t *testing.T) {
	cases := []struct {
		name   string
		header string
		data   int
		kind   error
	}{
		{"F4 odd count is not whole bytes", `{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}`, 2, formats.ErrMisalignedSlice},
		{"F6 count not a multiple of 4", `{"a":{"dtype":"F6_E2M3","shape":[2],"data_offsets":[0,2]}}`, 2, formats.ErrMisalignedSlice},
		{"bit count overflows", `{"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}}`, 8, formats.ErrValidationOverflow},
		{"element count overflows", `{"a":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,1]}}`, 1, formats.ErrValidationOverflow},
		{"zero dim does not hide an overflow after it", `{"a":{"dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}}`, 0, formats.ErrValidationOverflow},
		{"byte length too long", `{"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,6]}}`, 6, formats.ErrTensorInvalidInfo},
		{"offsets checked before sizes of later tensors", `{"a":{"dtype":"U8","shape":[3],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}}`, 5, formats.ErrTensorInvalidInfo},
		{"earlier tensor's offset error first", `{"a":{"dtype":"U8","shape":[2],"data_offsets":[1,3]},"b":{"dtype":"U8","shape":[9],"data_offsets":[3,4]}}`, 4, formats.ErrInvalidOffset},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := readBytes(rawFile(c.header, make([]byte, c.data)))
			if !errors.Is(err, c.kind) {
				t.Fatalf("got %v, want %v", err, c.kind)
			}
		})
	}
	// Sub-byte dtypes that do make whole bytes are fine.
	for _, h := range []string{
		`{"a":{"dtype":"F4","shape":[4],"data_offsets":[0,2]}}`,
		`{"a":{"dtype":"F6_E3M2","shape":[2,2],"data_offsets":[0,3]}}`,
	} {
		data := 2
		if strings.Contains(h, "F6") {
			data = 3
		}
		if _, err := readBytes(rawFile(h, make([]byte, data))); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
}

// The reference applies its rules in order; the first broken one is reported.
func TestRuleOrder(t *testing.T) {
	// Too large beats past-the-end.
	big := []byte("\x01\xe1\xf5\x05\x00\x00\x00\x00{}") // 100_000_001
	if _, err := readBytes(big); !errors.Is(err, formats.ErrHeaderTooLarge) {
		t.Errorf("N=1e8+1: %v", err)
	}
	limit := []byte("\x00\xe1\xf5\x05\x00\x00\x00\x00{}") // exactly 100_000_000: not too large, but past the end
	if _, err := readBytes(limit); !errors.Is(err, formats.ErrInvalidHeaderLength) || errors.Is(err, formats.ErrHeaderTooLarge) {
		t.Errorf("N=1e8: %v", err)
	}
	// Invalid UTF-8 beats invalid JSON; the offset points at the bad byte.
	_, err := readBytes(rawFile("{\"a\xc3(", nil))
	if !errors.Is(err, formats.ErrInvalidHeader) {
		t.Fatalf("bad UTF-8: %v", err)
	}
	if fe := asError(t, err); fe.Offset != 8+3 {
		t.Errorf("bad UTF-8 at offset %d, want 11", fe.Offset)
	}
	// JSON errors beat offset errors, which beat the end-of-file rule.
	if _, err := readBytes(rawFile(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[1,3]},"b":1}`, nil)); !errors.Is(err, formats.ErrInvalidHeaderDeserialization) {
		t.Errorf("JSON before offsets: %v", err)
	}
	if _, err := readBytes(rawFile(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}`, make([]byte, 100))); !errors.Is(err, formats.ErrInvalidOffset) {
		t.Errorf("offsets before end of file: %v", err)
	}
}

func TestTruncatedFileKeepsTheHeader(t *testing.T) {
	specs := []formats.TensorSpec{
		{Name: "a", DType: formats.F32, Shape: []uint64{4}},
		{Name: "b", DType: formats.F32, Shape: []uint64{4}},
		{Name: "c", DType: formats.F32, Shape: []uint64{4}},
	}
	full := encode(t, specs, nil, nil)
	cut := full[:len(full)-20] // c entirely, b partly
	h, err := readBytes(cut)
	if !errors.Is(err, formats.ErrMetadataIncompleteBuffer) || !errors.Is(err, formats.ErrTruncated) {
		t.Fatalf("got %v", err)
	}
	if h == nil || len(h.Tensors) != 3 {
		t.Fatalf("header not returned with the truncation error: %+v", h)
	}
	dir := t.TempDir()
	f, ferr := formats.ReadFileHeader(writeFile(t, dir, "cut.safetensors", cut), "cut.safetensors")
	if ferr != nil {
		t.Fatal(ferr)
	}
	if f.Valid() || !errors.Is(f.Err, formats.ErrTruncated) {
		t.Fatalf("File.Err %v", f.Err)
	}
	cutNames := map[string]bool{}
	for _, tn := range f.Tensors() {
		if tn.Cut {
			cutNames[tn.Name] = true
		}
	}
	if !cutNames["b"] || !cutNames["c"] || cutNames["a"] {
		t.Errorf("cut tensors %v, want b and c", cutNames)
	}
}

// A header whose tensors add up to more than 2^64 - (header end) must be called
// truncated, not "trailing bytes" (8+N+DataLen wraps around in 64 bits), and no
// tensor offset may wrap negative.
func TestHugeDeclaredDataIsTruncated(t *testing.T) {
	var parts []string
	const each = uint64(1)<<60 - 1
	for i := uint64(0); i < 16; i++ {
		parts = append(parts, fmt.Sprintf(`"t%02d":{"dtype":"U8","shape":[%d],"data_offsets":[%d,%d]}`, i, each, i*each, (i+1)*each))
	}
	file := rawFile("{"+strings.Join(parts, ",")+"}", make([]byte, 64))
	h, err := readBytes(file)
	if !errors.Is(err, formats.ErrTruncated) || errors.Is(err, formats.ErrTrailingBytes) {
		t.Fatalf("got %v, want truncated", err)
	}
	f, ferr := formats.ReadFileHeader(writeFile(t, t.TempDir(), "huge.safetensors", file), "huge.safetensors")
	if ferr != nil || h == nil {
		t.Fatal(ferr)
	}
	for _, tn := range f.Tensors() {
		if !tn.Cut || tn.Offset < 0 || tn.Length() < 0 {
			t.Errorf("%s: cut %v offset %d length %d", tn.Name, tn.Cut, tn.Offset, tn.Length())
		}
	}
}

func TestTensorOffsetsAndData(t *testing.T) {
	specs := []formats.TensorSpec{
		{Name: "w", DType: formats.BF16, Shape: []uint64{3, 2}},
		{Name: "b", DType: formats.F32, Shape: []uint64{2}},
		{Name: "s", DType: formats.I64, Shape: []uint64{}},
	}
	data := tensorData{
		"w": {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
		"b": {21, 22, 23, 24, 25, 26, 27, 28},
		"s": {31, 32, 33, 34, 35, 36, 37, 38},
	}
	file := encode(t, specs, data, map[string]string{"format": "pt"})
	f, err := formats.ReadFileHeader(writeFile(t, t.TempDir(), "m.safetensors", file), "m.safetensors")
	if err != nil || !f.Valid() {
		t.Fatal(err, f.Err)
	}
	if len(f.Problems) != 0 {
		t.Errorf("problems on a clean file: %v", f.Problems)
	}
	got := map[string][]byte{}
	for _, tn := range f.Tensors() {
		got[tn.Name] = file[tn.Offset : tn.Offset+tn.Length()]
		if tn.Cut {
			t.Errorf("%s cut", tn.Name)
		}
	}
	for name, want := range data {
		if !bytes.Equal(got[name], want) {
			t.Errorf("%s: bytes %v, want %v", name, got[name], want)
		}
	}
	if f.Header.Metadata["format"] != "pt" {
		t.Errorf("metadata %v", f.Header.Metadata)
	}
}

func TestFileProblems(t *testing.T) {
	dir := t.TempDir()
	t.Run("duplicate tensor name", func(t *testing.T) {
		p := writeFile(t, dir, "dup.safetensors", rawFile(
			`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{9}))
		f, err := formats.ReadFileHeader(p, "dup.safetensors")
		if err != nil {
			t.Fatal(err)
		}
		if !f.Valid() {
			t.Fatalf("the reference accepts duplicates (last wins): %v", f.Err)
		}
		pr := findProblem(f.Problems, formats.ErrDuplicateName)
		dups := 0
		for _, p := range f.Problems {
			if errors.Is(p.Err, formats.ErrDuplicateName) {
				dups++
			}
		}
		if pr == nil || pr.Severity != formats.SevError || pr.Err.Tensor != "a" || dups != 1 {
			t.Fatalf("problems %v", f.Problems)
		}
		if len(f.Header.Tensors) != 1 || f.Header.Tensors[0].Shape[0] != 1 {
			t.Errorf("the last declaration must win: %+v", f.Header.Tensors)
		}
	})
	t.Run("unpadded header", func(t *testing.T) {
		p := writeFile(t, dir, "unpadded.safetensors", rawFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{9}))
		f, err := formats.ReadFileHeader(p, "unpadded.safetensors")
		if err != nil || !f.Valid() {
			t.Fatal(err, f.Err)
		}
		pr := findProblem(f.Problems, formats.ErrUnpaddedHeader)
		if pr == nil || pr.Severity != formats.SevInfo || len(f.Problems) != 1 {
			t.Fatalf("problems %v", f.Problems)
		}
	})
	t.Run("LFS pointer", func(t *testing.T) {
		ptr := "version https://git-lfs.github.com/spec/v1\noid sha256:8c0d23e9481cffe855e70343647d354e196023761727c893add3f7dcbe5f1576\nsize 4957559960\n"
		f, err := formats.ReadFileHeader(writeFile(t, dir, "lfs.safetensors", []byte(ptr)), "lfs.safetensors")
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(f.Err, formats.ErrLFSPointer) || !errors.Is(f.Err, formats.ErrHeaderTooLarge) {
			t.Fatalf("got %v", f.Err)
		}
		if !strings.Contains(f.Err.Error(), "5.0 GB") {
			t.Errorf("the pointer's object size is not reported: %v", f.Err)
		}
	})
	t.Run("symlink target as text", func(t *testing.T) {
		txt := "/home/john/.cache/huggingface/hub/models--TinyLlama--TinyLlama-1.1B-Chat-v1.0/snapshots/fe8a4ea1/model.safetensors"
		f, err := formats.ReadFileHeader(writeFile(t, dir, "link.safetensors", []byte(txt)), "link.safetensors")
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(f.Err, formats.ErrNotSafetensors) || errors.Is(f.Err, formats.ErrLFSPointer) {
			t.Fatalf("got %v", f.Err)
		}
	})
	t.Run("other formats are named", func(t *testing.T) {
		for name, content := range map[string][]byte{
			"zip":    append([]byte("PK\x03\x04"), make([]byte, 60)...),
			"pickle": append([]byte("\x80\x02}q\x00"), make([]byte, 60)...),
			"gguf":   append([]byte("GGUF\x03\x00\x00\x00"), make([]byte, 60)...),
			"html":   []byte("<!DOCTYPE html><html><body>Access denied</body></html>"),
			"json":   []byte("{}"),
			"crlf":   []byte("\r\n"),
		} {
			f, err := formats.ReadFileHeader(writeFile(t, dir, name+".safetensors", content), name)
			if err != nil {
				t.Fatal(err)
			}
			want := formats.ErrNotSafetensors
			if name == "zip" || name == "pickle" {
				// The magic decides, not the name: read as a (broken) PyTorch file.
				want = formats.ErrTorchFormat
			}
			if !errors.Is(f.Err, want) {
				t.Errorf("%s: %v", name, f.Err)
			}
		}
	})
	t.Run("not a regular file", func(t *testing.T) {
		if _, err := formats.ReadFileHeader(dir, "dir"); err == nil {
			t.Error("a directory was read as a file")
		}
	})
}

// ReadHeader reads the 8-byte prefix and the header, nothing of the data.
func TestReadHeaderReadsOnlyTheHeader(t *testing.T) {
	specs := []formats.TensorSpec{{Name: "big", DType: formats.F32, Shape: []uint64{1 << 16}}}
	file := encode(t, specs, nil, nil)
	r := &countingReader{r: bytes.NewReader(file)}
	h, err := formats.ReadHeader("x", r, int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	if r.maxEnd > h.DataStart() {
		t.Errorf("read up to byte %d, the data starts at %d", r.maxEnd, h.DataStart())
	}
}

type countingReader struct {
	r      *bytes.Reader
	maxEnd int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.maxEnd = max(c.maxEnd, off+int64(len(p)))
	return c.r.ReadAt(p, off)
}
