package formats

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ckpt-tool/ckpt/internal/testenv"
)

// fastAgrees checks the fast header path against the general parser on text:
// when the fast path accepts, the general parser must accept too and build the
// identical header. It reports whether the fast path accepted.
func fastAgrees(t *testing.T, text []byte) bool {
	t.Helper()
	if !utf8.Valid(text) {
		return false
	}
	if _, why := strictJSONCheck(text); why != "" {
		return false
	}
	fast := Header{Len: uint64(len(text))}
	if !parseHeaderFast(text, &fast) {
		return false
	}
	slow := Header{Len: uint64(len(text))}
	if err := parseHeaderObject("x", text, &slow); err != nil {
		t.Fatalf("the fast path accepted a header the general parser rejects (%v):\n%q", err, text)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("the two parsers disagree on %q:\nfast %+v\nslow %+v", text, fast, slow)
	}
	return true
}

// headerText returns the JSON header of a safetensors file's bytes.
func headerText(b []byte) []byte {
	if len(b) < 8 {
		return nil
	}
	n := binary.LittleEndian.Uint64(b)
	if n > uint64(len(b)-8) {
		return nil
	}
	return b[8 : 8+n]
}

var fastSeeds = []string{
	`{}`, ` { } `, `{"__metadata__":{}}`, `{"__metadata__":{"format":"pt","k":"v"}}`,
	`{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}`,
	`{"a":{"shape":[],"data_offsets":[0,4],"dtype":"I32"}}   `,
	"{\"a\" :\t{ \"dtype\" : \"BF16\" , \"shape\" : [ 3 ] , \"data_offsets\" : [ 0 , 6 ] }\r\n}",
	`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`,
	`{"a":{"dtype":"F32","shape":[01],"data_offsets":[0,4]}}`,
	`{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}`,
	`{"a":{"dtype":"F32","shape":[1e2],"data_offsets":[0,4]}}`,
	`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`,
	`{"a":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,4]}}`,
	`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}}`,
	`{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}`,
	`{"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}`,
	`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`,
	`{"a\u00e9":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`,
	`{"__metadata__":null}`, `{"__metadata__":{"k":1}}`, `{"__metadata__":{},"__metadata__":{}}`,
	`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},}`, `{"a":{}}`, `{`, `[]`, `null`,
	`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}x`, "{\"a\x01\":{}}",
}

func TestHeaderFastPathAgreesWithTheGeneralParser(t *testing.T) {
	accepted := 0
	for _, s := range fastSeeds {
		if fastAgrees(t, []byte(s)) {
			accepted++
		}
	}
	if accepted < 8 {
		t.Errorf("the fast path accepted only %d of the simple seed headers", accepted)
	}
	// C128 is a dtype ckpt knows from other containers, not one a safetensors
	// header may name: the fast path must not take it.
	text := []byte(`{"a":{"dtype":"C128","shape":[1],"data_offsets":[0,16]}}`)
	if h := (Header{Len: uint64(len(text))}); parseHeaderFast(text, &h) {
		t.Error("the fast path accepted dtype C128")
	}
}

// Every header a writer produced, the reference's included, takes the fast path
// and gives the general parser's result.
func TestHeaderFastPathOnRealAndWrittenFiles(t *testing.T) {
	var buf bytes.Buffer
	specs := []TensorSpec{{Name: "b", DType: BF16, Shape: []uint64{3, 2}}, {Name: "a", DType: F32, Shape: []uint64{}}}
	w, err := NewWriter(&buf, specs, map[string]string{"format": "pt", "note": "x"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range w.Order() {
		n, _ := s.ByteLen()
		if err := w.WriteTensor(s.Name, bytes.NewReader(make([]byte, n))); err != nil {
			t.Fatal(err)
		}
	}
	if !fastAgrees(t, headerText(buf.Bytes())) {
		t.Error("a header of our own writer did not take the fast path")
	}
	root := testenv.Realdata(t)
	fast, all := 0, 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".safetensors") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if text := headerText(b); text != nil {
			all++
			if fastAgrees(t, text) {
				fast++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fast*2 < all {
		t.Errorf("only %d of %d real headers took the fast path", fast, all)
	}
	t.Logf("%d of %d real headers took the fast path", fast, all)
}

// FuzzHeaderFastPath holds the fast header path to the general parser.
func FuzzHeaderFastPath(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	for i := 0; i < 3; i++ {
		f.Add([]byte(fmt.Sprintf(`{"t%d":{"dtype":"U8","shape":[%d],"data_offsets":[0,%d]}}`, i, i, i)))
	}
	f.Fuzz(func(t *testing.T, text []byte) { fastAgrees(t, text) })
}

// A name declared twice leaves the bytes of its first declaration to no tensor:
// the offset error says so, and the error kind stays the reference's.
func TestDuplicateNameExplainsTheOffsetError(t *testing.T) {
	text := `{"a":{"dtype":"F32","shape":[18],"data_offsets":[0,72]},"a":{"dtype":"F32","shape":[18],"data_offsets":[72,144]}}`
	_, err := ParseHeaderJSON("x.safetensors", []byte(text))
	var fe *Error
	if !errors.As(err, &fe) || fe.Kind != ErrInvalidOffset {
		t.Fatalf("got %v, want ErrInvalidOffset", err)
	}
	if !strings.Contains(fe.Detail, `"a" declared more than once`) {
		t.Errorf("the message does not point at the duplicate name: %s", fe.Detail)
	}
}
