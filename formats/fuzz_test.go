package formats_test

// Fuzz targets. Their seeds run as ordinary tests; to fuzz, e.g.
//
//	go test -run='^$' -fuzz=FuzzReadHeader -fuzztime=60s ./formats/
//
// Crashers land in testdata/fuzz/<FuzzName>/ and stay there as regression cases.

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ckpt-tool/ckpt/formats"
)

var allSentinels = []error{
	formats.ErrHeaderTooSmall, formats.ErrHeaderTooLarge, formats.ErrInvalidHeaderLength, formats.ErrInvalidHeader,
	formats.ErrInvalidHeaderDeserialization, formats.ErrInvalidOffset, formats.ErrValidationOverflow,
	formats.ErrMisalignedSlice, formats.ErrTensorInvalidInfo, formats.ErrMetadataIncompleteBuffer,
}

// seedHeaders are header texts covering every rule and the accepted oddities.
func seedHeaders() []string {
	u8 := `"dtype":"U8","shape":[2],"data_offsets":[0,2]`
	return []string{
		`{}`, "\r \t\n{}\r\n \t", `{"a":{` + u8 + `}}`, `{"__metadata__":{"format":"pt"},"a":{` + u8 + `}}`,
		`{"__metadata__":null,"a":{` + u8 + `}}`, `{"a":{` + u8 + `,"x":[{"y":1}]}}`,
		`{"test":{"dtype":"I32","shape":[],"data_offsets":[0,4]}}`, `{"test":{"dtype":"I32","shape":[2,0],"data_offsets":[0,0]}}`,
		`{"test":{"dtype":"I32","shape":[2,18446744073709551614],"data_offsets":[0,16]}}`,
		`{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}`, `{"a":{"dtype":"F6_E3M2","shape":[4],"data_offsets":[0,3]}}`,
		`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`,
		`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`,
		`{"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}`, `{"a":{"dtype":"F12","shape":[2],"data_offsets":[0,2]}}`,
		`{"a":{"dtype":"U8","shape":[2.0],"data_offsets":[0,2]}}`, `{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,2]}}`,
		`null`, `[]`, `{`, "{}\x00", `{"__metadata__":{},"__metadata__":{}}`, `{"__metadata__":{"a":1}}`,
		`{"a\ud83d\ude00":{` + u8 + `}}`, `{"a\ud800":{` + u8 + `}}`, "{\"\xff\":{" + u8 + "}}",
		`{"a":{` + u8 + `,"x":` + strings.Repeat("[", 126) + strings.Repeat("]", 126) + `}}`,
	}
}

// seedFiles are whole files: the reference's malformed cases, headers with
// data of the right and wrong length, and the realdata corpus when present.
func seedFiles(f *testing.F) [][]byte {
	out := [][]byte{nil, []byte("\x01\x00\x00\x00\x00\x00\x00"), []byte("<\x00\x00\x00\x00\x00\x00\x00"),
		[]byte("<\x00\x00\x00\x00\xff\xff\xff{}"), []byte("\x01\x00\x00\x00\x00\x00\x00\x00\xff"),
		[]byte("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 12\n"), []byte("{}"), []byte("\r\n")}
	for _, h := range seedHeaders() {
		out = append(out, rawFile(h, nil), rawFile(h, []byte{1, 2}), rawFile(h, make([]byte, 16)))
	}
	root := filepath.Join("..", "..", "shared", "realdata") // best effort: seeds only
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				root = filepath.Join(dir, "..", "shared", "realdata")
				break
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".safetensors") {
			if info, err := d.Info(); err == nil && info.Size() <= 64<<10 {
				if b, err := os.ReadFile(p); err == nil {
					out = append(out, b)
				}
			}
		}
		return nil
	})
	return out
}

// checkHeaderInvariants holds for every header the reader accepts.
func checkHeaderInvariants(t *testing.T, h *formats.Header) {
	t.Helper()
	var start uint64
	seen := map[string]bool{}
	for _, ti := range h.Tensors {
		if seen[ti.Name] || ti.Name == "__metadata__" || !utf8.ValidString(ti.Name) {
			t.Fatalf("bad tensor name %q", ti.Name)
		}
		seen[ti.Name] = true
		if !ti.DType.Valid() || ti.Begin != start || ti.End < ti.Begin {
			t.Fatalf("%q: dtype %q offsets [%d,%d], expected start %d", ti.Name, ti.DType, ti.Begin, ti.End, start)
		}
		n := uint64(1)
		for _, d := range ti.Shape {
			hi, lo := bits.Mul64(n, d)
			if hi != 0 {
				t.Fatalf("%q: accepted an overflowing shape %v", ti.Name, ti.Shape)
			}
			n = lo
		}
		hi, nb := bits.Mul64(n, uint64(ti.DType.Bits()))
		if hi != 0 || nb%8 != 0 || nb/8 != ti.End-ti.Begin || ti.Numel() != n {
			t.Fatalf("%q: %s %v does not fill [%d,%d]", ti.Name, ti.DType, ti.Shape, ti.Begin, ti.End)
		}
		start = ti.End
	}
	if h.DataLen != start {
		t.Fatalf("DataLen %d, tensors end at %d", h.DataLen, start)
	}
}

func checkErrorShape(t *testing.T, err error, limit int64) {
	t.Helper()
	var fe *formats.Error
	if !errors.As(err, &fe) {
		t.Fatalf("%v (%T) is not a *formats.Error", err, err)
	}
	known := false
	for _, k := range allSentinels {
		known = known || errors.Is(err, k)
	}
	if !known || fe.File == "" || fe.Detail == "" || fe.Offset < -1 || fe.Offset > limit {
		t.Fatalf("malformed error: %+v", fe)
	}
}

func FuzzParseHeaderJSON(f *testing.F) {
	for _, h := range seedHeaders() {
		f.Add([]byte(h))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		h, err := formats.ParseHeaderJSON("f.safetensors", text)
		if err != nil {
			checkErrorShape(t, err, 1<<62) // offset errors point into the data section, beyond the text
			return
		}
		checkHeaderInvariants(t, h)
		// Re-encoding what was read and parsing it again gives the same header.
		specs := make([]formats.TensorSpec, len(h.Tensors))
		for i, ti := range h.Tensors {
			specs[i] = formats.TensorSpec{Name: ti.Name, DType: ti.DType, Shape: ti.Shape}
		}
		order := formats.PlanOrder(specs)
		enc, _, err := formats.EncodeHeader(order, h.Metadata)
		if err != nil {
			t.Fatalf("cannot re-encode an accepted header: %v", err)
		}
		h2, err := formats.ParseHeaderJSON("g.safetensors", enc)
		if err != nil {
			t.Fatalf("re-encoded header rejected: %v\n%q", err, enc)
		}
		if len(h2.Tensors) != len(h.Tensors) || len(h2.Metadata) != len(h.Metadata) {
			t.Fatalf("re-encoded: %d tensors, %d metadata; was %d, %d", len(h2.Tensors), len(h2.Metadata), len(h.Tensors), len(h.Metadata))
		}
		for i, ti := range h2.Tensors {
			if ti.Name != order[i].Name || ti.DType != order[i].DType || fmt.Sprint(ti.Shape) != fmt.Sprint(order[i].Shape) {
				t.Fatalf("re-encoded tensor %d: %+v, want %+v", i, ti, order[i])
			}
		}
		for k, v := range h.Metadata {
			if h2.Metadata[k] != v {
				t.Fatalf("metadata %q changed", k)
			}
		}
	})
}

func FuzzReadHeader(f *testing.F) {
	for _, b := range seedFiles(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, file []byte) {
		h, err := readBytes(file)
		if err != nil {
			checkErrorShape(t, err, int64(len(file)))
			if h != nil { // only a rule-8 failure returns the header
				if !errors.Is(err, formats.ErrMetadataIncompleteBuffer) {
					t.Fatalf("header returned with %v", err)
				}
				checkHeaderInvariants(t, h)
				if h.DataStart()+int64(h.DataLen) == int64(len(file)) && h.DataLen < uint64(len(file)) {
					t.Fatal("rule 8 reported on a file that ends where the data does")
				}
			}
			return
		}
		checkHeaderInvariants(t, h)
		if h.DataStart()+int64(h.DataLen) != int64(len(file)) {
			t.Fatalf("accepted, but data ends at %d of %d", h.DataStart()+int64(h.DataLen), len(file))
		}
	})
}

// The reader and the oracle agree, or disagree only in documented ways.
func FuzzOracleDifferential(f *testing.F) {
	for _, b := range seedFiles(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, file []byte) {
		compareReaders(t, file)
	})
}

func FuzzParseIndex(f *testing.F) {
	for _, s := range []string{
		`{"metadata":{"total_size":16},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}`,
		`{"metadata":{"total_size":1.6e1},"weight_map":{}}`, `{"weight_map":{"a":null}}`, `{"metadata":"x","weight_map":{"a":"s"}}`,
		`{"weight_map":{"a":"s"}} x`, `null`, `[]`, ``, "version https://git-lfs.github.com/spec/v1\n",
		`{"weight_map":{"a":"../../etc/passwd","b":"/abs","c":"sub/x.safetensors"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := formats.ParseIndex("i.json", data)
		if err != nil {
			if !errors.Is(err, formats.ErrIndex) && !errors.Is(err, formats.ErrLFSPointer) {
				t.Fatalf("%v is neither ErrIndex nor ErrLFSPointer", err)
			}
			return
		}
		if ix.WeightMap == nil {
			t.Fatal("accepted without a weight_map")
		}
		shards := ix.Shards()
		for i := 1; i < len(shards); i++ {
			if shards[i-1] >= shards[i] {
				t.Fatalf("shards not sorted and distinct: %q", shards)
			}
		}
		ix.TotalSize()
		for _, s := range shards {
			// Whatever the index says, a shard name never resolves outside the directory.
			if p, err := formats.SafeJoin("/ckpt/dir", s); err == nil {
				if rel, rerr := filepath.Rel("/ckpt/dir", p); rerr != nil || !filepath.IsLocal(rel) {
					t.Fatalf("shard %q joined to %q", s, p)
				}
			} else if !errors.Is(err, formats.ErrUnsafePath) {
				t.Fatalf("SafeJoin(%q): %v", s, err)
			}
		}
	})
}

// byteStream hands out the fuzzer's bytes as small decisions.
type byteStream struct{ b []byte }

func (s *byteStream) next() int {
	if len(s.b) == 0 {
		return 0
	}
	v := int(s.b[0])
	s.b = s.b[1:]
	return v
}

func (s *byteStream) str() string {
	n := s.next() % 8
	n = min(n, len(s.b))
	out := string(s.b[:n])
	s.b = s.b[n:]
	return out
}

func FuzzWriterRoundTrip(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{3, 1, 'a', 17, 2, 3, 4, 1, 'b', 0, 0, 1, 'c', 1, 1, 4, 2, 1, 'k', 1, 'v'})
	f.Add([]byte{2, 1, 'a', 1, 1, 3, 1, 'a', 1, 1, 3})                                     // duplicate names
	f.Add([]byte{1, 2, 0xc3, 0x28, 14, 0})                                                 // invalid UTF-8 name
	f.Add([]byte{1, 12, '_', '_', 'm', 'e', 't', 'a', 'd', 'a', 't', 'a', '_', '_', 4, 0}) // reserved name
	f.Add([]byte{1, 1, 'x', 1, 1, 3})                                                      // F4 with 3 elements
	f.Fuzz(func(t *testing.T, seed []byte) {
		s := &byteStream{b: seed}
		rc := randomCheckpoint{data: tensorData{}}
		var invalidName, duplicate, misaligned bool
		seen := map[string]bool{}
		all := formats.AllDTypes()
		for i, n := 0, s.next()%6; i < n; i++ {
			spec := formats.TensorSpec{Name: s.str(), DType: all[s.next()%len(all)]}
			for r := s.next() % 4; r > 0; r-- {
				spec.Shape = append(spec.Shape, uint64(s.next()%7))
			}
			invalidName = invalidName || !utf8.ValidString(spec.Name)
			duplicate = duplicate || seen[spec.Name] || spec.Name == "__metadata__"
			seen[spec.Name] = true
			nb, err := spec.ByteLen()
			if err != nil {
				misaligned = true
			}
			data := make([]byte, nb)
			for j := range data {
				data[j] = byte(j*31 + i)
			}
			rc.specs = append(rc.specs, spec)
			rc.data[spec.Name] = data
		}
		if s.next()%2 == 1 {
			rc.md = map[string]string{}
			for j := s.next() % 3; j > 0; j-- {
				rc.md[s.str()] = s.str() // a later key may replace an earlier value
			}
			for k, v := range rc.md {
				invalidName = invalidName || !utf8.ValidString(k) || !utf8.ValidString(v)
			}
		}
		var buf bytes.Buffer
		w, err := formats.NewWriter(&buf, rc.specs, rc.md)
		if err != nil {
			if !invalidName && !duplicate && !misaligned {
				t.Fatalf("writer refused a valid checkpoint: %v", err)
			}
			if buf.Len() != 0 {
				t.Fatal("bytes written before the error")
			}
			return
		}
		if invalidName || duplicate || misaligned {
			t.Fatalf("writer accepted bad input (invalid UTF-8 %v, duplicate %v, misaligned %v)", invalidName, duplicate, misaligned)
		}
		for _, sp := range w.Order() {
			if err := w.WriteTensor(sp.Name, bytes.NewReader(rc.data[sp.Name])); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		checkRoundTrip(t, rc, buf.Bytes())
	})
}
