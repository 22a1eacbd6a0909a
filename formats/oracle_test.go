package formats_test

// nlpodyssey/safetensors is an independent Go reader and writer. It is not the
// reader of record (it knows 13 of the 22 dtypes and is laxer than the
// reference in places) but where both readers accept a file they must agree on
// every name, dtype, shape and data byte; where they disagree the reason must be
// one of the documented differences below.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	st "github.com/nlpodyssey/safetensors"

	"github.com/ckpt-tool/ckpt/formats"
)

// oracleDTypes are the dtypes the oracle knows.
var oracleDTypes = []formats.DType{"BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"}

func oracleKnows(d formats.DType) bool {
	for _, o := range oracleDTypes {
		if o == d {
			return true
		}
	}
	return false
}

// agree compares what both readers made of the same file.
func agree(file []byte, h *formats.Header, o st.SafeTensors) error {
	if o.Len() != len(h.Tensors) {
		return fmt.Errorf("oracle has %d tensors, ours %d", o.Len(), len(h.Tensors))
	}
	for _, ti := range h.Tensors {
		v, ok := o.Tensor(ti.Name)
		if !ok {
			return fmt.Errorf("tensor %q missing from the oracle", ti.Name)
		}
		if v.DType().String() != string(ti.DType) {
			return fmt.Errorf("%q: oracle dtype %s, ours %s", ti.Name, v.DType(), ti.DType)
		}
		if fmt.Sprint(v.Shape()) != fmt.Sprint(ti.Shape) {
			return fmt.Errorf("%q: oracle shape %v, ours %v", ti.Name, v.Shape(), ti.Shape)
		}
		ours := file[h.DataStart()+int64(ti.Begin) : h.DataStart()+int64(ti.End)]
		if !bytes.Equal(v.Data(), ours) {
			return fmt.Errorf("%q: data differs", ti.Name)
		}
	}
	_, meta, err := st.ReadMetadata(file)
	if err != nil {
		return fmt.Errorf("oracle ReadMetadata: %v", err)
	}
	om := meta.Metadata()
	if len(om) != len(h.Metadata) {
		return fmt.Errorf("oracle metadata %v, ours %v", om, h.Metadata)
	}
	for k, v := range h.Metadata {
		if om[k] != v {
			return fmt.Errorf("metadata %q: oracle %q, ours %q", k, om[k], v)
		}
	}
	return nil
}

// headerText returns the JSON header of a file whose prefix is plausible.
func headerText(file []byte) ([]byte, bool) {
	if len(file) < 8 {
		return nil, false
	}
	n := uint64(file[0]) | uint64(file[1])<<8 | uint64(file[2])<<16 | uint64(file[3])<<24 |
		uint64(file[4])<<32 | uint64(file[5])<<40 | uint64(file[6])<<48 | uint64(file[7])<<56
	if n > uint64(len(file)-8) {
		return nil, false
	}
	return file[8 : 8+n], true
}

// hasDuplicateKeys reports whether any JSON object in text repeats a key.
func hasDuplicateKeys(text []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(text))
	type frame struct {
		keys   map[string]bool
		object bool
		expect bool // next string token in this object is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if top != nil && top.object {
					top.expect = true // the container was a value
				}
				stack = append(stack, &frame{keys: map[string]bool{}, object: v == '{', expect: v == '{'})
				continue
			default:
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].object {
					stack[len(stack)-1].expect = true
				}
				continue
			}
		case string:
			if top != nil && top.object && top.expect {
				if top.keys[v] {
					return true
				}
				top.keys[v] = true
				top.expect = false
				continue
			}
		}
		if top != nil && top.object {
			top.expect = true // a scalar value was consumed
		}
	}
}

// explainDisagreement names the documented difference that makes the two
// readers disagree on file, or returns "" when none applies.
func explainDisagreement(file []byte, ours, theirs error) string {
	text, ok := headerText(file)
	switch {
	case ours == nil && theirs != nil:
		if !ok {
			return ""
		}
		var raw map[string]json.RawMessage
		if json.Unmarshal(text, &raw) != nil {
			return ""
		}
		for name, v := range raw {
			if name == "__metadata__" {
				continue
			}
			var info map[string]json.RawMessage
			if json.Unmarshal(v, &info) != nil {
				return ""
			}
			if len(info) != 3 {
				return "the oracle rejects extra keys in a tensor's info (the reference ignores them)"
			}
			var d string
			json.Unmarshal(info["dtype"], &d)
			if !oracleKnows(formats.DType(d)) {
				return "the oracle does not know dtype " + d
			}
		}
		return ""
	case ours != nil && theirs == nil:
		switch {
		case errors.Is(ours, formats.ErrInvalidHeader):
			return "the oracle accepts a header that is not UTF-8"
		case !errors.Is(ours, formats.ErrInvalidHeaderDeserialization) || !ok:
			return ""
		case string(bytes.Trim(text, " \t\r\n")) == "null":
			return "the oracle accepts a null header"
		case hasDuplicateKeys(text):
			return "the oracle accepts duplicate keys (__metadata__ or a tensor's fields)"
		}
		if _, why := formats.StrictJSONCheck(text); why != "" {
			return "the oracle accepts what serde_json refuses: " + why
		}
	}
	return ""
}

// compareReaders runs both readers over file and fails on an unexplained
// disagreement. It reports whether both accepted.
func compareReaders(t *testing.T, file []byte) bool {
	t.Helper()
	h, ours := readBytes(file)
	o, theirs := st.Deserialize(file)
	switch {
	case ours == nil && theirs == nil:
		if err := agree(file, h, o); err != nil {
			t.Errorf("both readers accept, but %v", err)
		}
		return true
	case ours != nil && theirs != nil:
		return false
	}
	if why := explainDisagreement(file, ours, theirs); why == "" {
		t.Errorf("unexplained disagreement: ours %v, oracle %v", ours, theirs)
	} else {
		t.Logf("known difference: %s", why)
	}
	return false
}

func TestOracleAgreesOnRealdata(t *testing.T) {
	root := realdataDir(t)
	both := 0
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".safetensors") {
			return err
		}
		file, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		t.Run(filepath.ToSlash(rel), func(t *testing.T) {
			if compareReaders(t, file) {
				both++
			}
		})
		return nil
	})
	if both < 40 {
		t.Errorf("both readers accepted only %d realdata files", both)
	}
}

func TestOracleAgreesOnGeneratedFiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 300; i++ {
		rc := genCheckpoint(rng, oracleDTypes)
		file := encode(t, rc.specs, rc.data, rc.md)
		if !compareReaders(t, file) {
			t.Fatalf("case %d: a file our writer made for the oracle's dtypes was not accepted by both", i)
		}
	}
}

// oracleView feeds the oracle's writer without its NewTensorView (which
// mishandles scalar shapes).
type oracleView struct {
	d     st.DType
	shape []uint64
	data  []byte
}

func (v oracleView) DType() st.DType { return v.d }
func (v oracleView) Shape() []uint64 { return v.shape }
func (v oracleView) Data() []byte    { return v.data }
func (v oracleView) DataLen() uint64 { return uint64(len(v.data)) }

// Files written by the oracle's independent writer read back identically.
func TestReadFilesTheOracleWrote(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	for i := 0; i < 300; i++ {
		rc := genCheckpoint(rng, oracleDTypes)
		views := map[string]oracleView{}
		for _, s := range rc.specs {
			d, err := st.ParseDType(string(s.DType))
			if err != nil {
				t.Fatal(err)
			}
			views[s.Name] = oracleView{d, s.Shape, rc.data[s.Name]}
		}
		var buf bytes.Buffer
		if err := st.SerializeToWriter(views, rc.md, &buf); err != nil {
			t.Fatal(err)
		}
		file := buf.Bytes()
		if len(rc.md) == 0 {
			rc.md = nil // the oracle's writer drops an empty __metadata__
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkRoundTripContent(t, rc, file) })
	}
}

// checkRoundTripContent is checkRoundTrip without the layout checks that only
// the reference writer's conventions guarantee.
func checkRoundTripContent(t *testing.T, rc randomCheckpoint, file []byte) {
	t.Helper()
	h, err := readBytes(file)
	if err != nil {
		t.Fatalf("the oracle's file does not read: %v", err)
	}
	if len(h.Tensors) != len(rc.specs) || len(h.Metadata) != len(rc.md) {
		t.Fatalf("%d tensors / %d metadata read, %d / %d written", len(h.Tensors), len(h.Metadata), len(rc.specs), len(rc.md))
	}
	got := map[string]formats.TensorInfo{}
	for _, ti := range h.Tensors {
		got[ti.Name] = ti
	}
	for _, s := range rc.specs {
		ti, ok := got[s.Name]
		if !ok || ti.DType != s.DType || fmt.Sprint(ti.Shape) != fmt.Sprint(s.Shape) ||
			!bytes.Equal(file[h.DataStart()+int64(ti.Begin):h.DataStart()+int64(ti.End)], rc.data[s.Name]) {
			t.Errorf("%q: read %+v", s.Name, ti)
		}
	}
	for k, v := range rc.md {
		if h.Metadata[k] != v {
			t.Errorf("metadata %q = %q, wrote %q", k, h.Metadata[k], v)
		}
	}
}

// The documented differences, one explicit case each: if the oracle changes,
// these fail and the documentation must change with it.
func TestOracleKnownDifferences(t *testing.T) {
	u8 := `"dtype":"U8","shape":[2],"data_offsets":[0,2]`
	cases := []struct {
		name          string
		file          []byte
		oursAccepts   bool
		oracleAccepts bool
	}{
		{"F8 dtype: the oracle rejects the whole file", rawFile(`{"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}`, []byte{1, 2}), true, false},
		{"F4, F6, C64 likewise", rawFile(`{"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}`, make([]byte, 8)), true, false},
		{"extra tensor keys: the reference ignores them, the oracle rejects", rawFile(`{"a":{`+u8+`,"x":1}}`, []byte{1, 2}), true, false},
		{"null header: the oracle reads zero tensors", rawFile(`null`, nil), false, true},
		{"invalid UTF-8: the oracle reads U+FFFD", rawFile("{\"a\xff\":{"+u8+"}}", []byte{1, 2}), false, true},
		{"duplicate __metadata__: the oracle keeps one", rawFile(`{"__metadata__":{},"__metadata__":{},"a":{`+u8+`}}`, []byte{1, 2}), false, true},
		{"duplicate field in a tensor's info", rawFile(`{"a":{"dtype":"U8",`+u8+`}}`, []byte{1, 2}), false, true},
		{"unpaired surrogate escape", rawFile(`{"a\ud800":{`+u8+`}}`, []byte{1, 2}), false, true},
		{"null __metadata__: both accept", rawFile(`{"__metadata__":null,"a":{`+u8+`}}`, []byte{1, 2}), true, true},
		{"trailing NUL: both reject", rawFile("{\"a\":{"+u8+"}}\x00", []byte{1, 2}), false, false},
		{"duplicate tensor names: both keep the last", rawFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{`+u8+`}}`, []byte{1, 2}), true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, ours := readBytes(c.file)
			_, theirs := st.Deserialize(c.file)
			if (ours == nil) != c.oursAccepts || (theirs == nil) != c.oracleAccepts {
				t.Fatalf("ours %v, oracle %v", ours, theirs)
			}
			compareReaders(t, c.file) // and the explanation machinery knows each one
		})
	}
	// The oracle's NewTensorView counts a scalar as zero elements, so it refuses
	// the 4 bytes of an I32 scalar (and would write a file the reference rejects).
	if _, err := st.NewTensorView(st.I32, []uint64{}, make([]byte, 4)); err == nil {
		t.Error("the oracle's NewTensorView now accepts a 4-byte I32 scalar")
	}
}
