// Package hostile generates a corpus of malformed checkpoints: every way a
// safetensors file, a sharded directory or its index, or a GGUF file can be
// broken, from a flipped header byte to symlink loops. Each case states what
// every command must do with it (exit status and the check of the finding that
// names the problem); tests feed each case to every command and hold it to
// that, and never accept a panic or a hang.
package hostile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/ckpt-tool/ckpt/formats"
)

// Case is one malformed checkpoint and what each command must do with it.
type Case struct {
	Name string // short, unique, file-name safe
	Path string // the file or directory to hand to a command

	Inspect Expect // ckpt inspect PATH
	Scan    Expect // ckpt scan PATH
	Diff    Expect // ckpt diff HEALTHY PATH
	Bisect  Expect // ckpt bisect HEALTHY PATH (PATH the newer checkpoint)
	Repair  Expect // ckpt repair PATH --from HEALTHY -o OUT
}

// Expect is what one command must do with a case: its exit status, and for
// exit 1 the check of the error finding that names the problem (for bisect, a
// culprit's check). Exit 2 always comes with a "ckpt: error:" diagnostic.
type Expect struct {
	Exit  int
	Check string
}

// The expectations of the kinds of case.
var (
	// A malformed checkpoint that opens: inspect, scan and bisect report a
	// format finding (exit 1); diff cannot compare it (exit 2); repair refuses
	// to build on it (exit 2).
	malformed = Case{
		Inspect: Expect{1, "format"}, Scan: Expect{1, "format"}, Diff: Expect{2, ""},
		Bisect: Expect{1, "format"}, Repair: Expect{2, ""},
	}
	// A checkpoint that cannot be opened at all (a loop, a directory where
	// the weights should be): every command stops with exit 2.
	unopenable = Case{
		Inspect: Expect{2, ""}, Scan: Expect{2, ""}, Diff: Expect{2, ""}, Bisect: Expect{2, ""}, Repair: Expect{2, ""},
	}
)

// repairable marks a malformed case whose damage GOOD can make good (tensors
// cut off by a truncation, bytes after the last tensor, an index entry for a
// tensor that is not there): repair writes a healthy output (exit 0).
func repairable(c *Case) { c.Repair = Expect{0, ""} }

// base is a small valid file: three F32 tensors.
func base() ([]byte, []formats.TensorSpec) {
	specs := []formats.TensorSpec{
		{Name: "model.layers.0.mlp.down_proj.weight", DType: formats.F32, Shape: []uint64{4, 4}},
		{Name: "model.layers.0.mlp.up_proj.weight", DType: formats.F32, Shape: []uint64{4, 4}},
		{Name: "model.norm.weight", DType: formats.F32, Shape: []uint64{4}},
	}
	var buf bytes.Buffer
	w, err := formats.NewWriter(&buf, specs, map[string]string{"format": "pt"})
	if err != nil {
		panic(err) // a fixed, valid input: cannot fail
	}
	for _, s := range w.Order() {
		n, _ := s.ByteLen()
		data := make([]byte, n)
		for i := 0; i+4 <= len(data); i += 4 {
			binary.LittleEndian.PutUint32(data[i:], 0x3c23d70a) // 0.01
		}
		if err := w.WriteTensor(s.Name, bytes.NewReader(data)); err != nil {
			panic(err)
		}
	}
	return buf.Bytes(), specs
}

// WriteHealthy writes a small valid checkpoint file at path: the file every
// malformed case was derived from, for commands that take a second, good input.
func WriteHealthy(path string) error {
	good, _ := base()
	return os.WriteFile(path, good, 0o644)
}

// withHeader builds a file from a header text and a data section.
func withHeader(header string, data []byte) []byte {
	out := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(out, uint64(len(header)))
	out = append(out, header...)
	return append(out, data...)
}

// Generate writes the corpus under dir and returns its cases (at least 100).
func Generate(dir string) ([]Case, error) {
	g := &gen{dir: dir}
	good, _ := base()
	hlen := int(binary.LittleEndian.Uint64(good))
	rng := rand.New(rand.NewPCG(1, 2))

	// Flipped header bits: every 3rd byte of the JSON header gets one of its low
	// seven bits flipped (it stays ASCII, so the damage is structural, not UTF-8);
	// flips that happen to leave a valid file (inside a name, say) are dropped.
	for i := 8; i < 8+hlen; i += 3 {
		b := append([]byte(nil), good...)
		b[i] ^= 1 << (i % 7)
		if !validFile(b) {
			g.file(fmt.Sprintf("flip-header-%03d", i), b, malformed)
		}
	}
	// Random and boundary length prefixes.
	for i, n := range []uint64{0, 1, 7, uint64(len(good)) - 7, uint64(len(good)), 1 << 32, 1 << 63, ^uint64(0), 100_000_001, uint64(hlen) + 1, uint64(hlen) - 1} {
		b := append([]byte(nil), good...)
		binary.LittleEndian.PutUint64(b, n)
		var mods []func(*Case)
		if n == uint64(hlen)+1 || n == uint64(hlen)-1 {
			// The header's padding absorbs the shift: the last tensor is one
			// byte short, or one byte trails it, and GOOD has it whole.
			mods = append(mods, repairable)
		}
		g.file(fmt.Sprintf("length-prefix-%02d", i), b, malformed, mods...)
	}
	for i := 0; i < 5; i++ {
		b := append([]byte(nil), good...)
		binary.LittleEndian.PutUint64(b, rng.Uint64())
		g.file(fmt.Sprintf("length-random-%d", i), b, malformed)
	}
	// Truncation at every region: inside the prefix, the header, the data, one byte short.
	for _, cut := range []int{0, 3, 8, 9, 8 + hlen/2, 8 + hlen, 8 + hlen + 1, 8 + hlen + 32, len(good) - 1} {
		var mods []func(*Case)
		if cut >= 8+hlen {
			mods = append(mods, repairable) // the header is whole: only tensors are cut
		}
		g.file(fmt.Sprintf("truncated-at-%d", cut), good[:cut], malformed, mods...)
	}
	g.file("trailing-bytes", append(append([]byte(nil), good...), 0, 0, 0, 0), malformed, repairable)
	data := bytes.Repeat([]byte{0, 0, 0x80, 0x3f}, 36) // 144 bytes of 1.0f
	hdr := func(entries ...string) string { return "{" + strings.Join(entries, ",") + "}" }
	ent := func(name, dt, shape string, b, e int) string {
		return fmt.Sprintf(`"%s":{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}`, name, dt, shape, b, e)
	}
	headers := map[string]string{
		"offsets-past-end":    hdr(ent("a", "F32", "36", 0, 144), ent("b", "F32", "4", 144, 160)),
		"overlapping":         hdr(ent("a", "F32", "20", 0, 80), ent("b", "F32", "20", 64, 144)),
		"aliased":             hdr(ent("a", "F32", "36", 0, 144), ent("b", "F32", "36", 0, 144)),
		"gap":                 hdr(ent("a", "F32", "10", 0, 40), ent("b", "F32", "20", 64, 144)),
		"end-before-begin":    hdr(ent("a", "F32", "0", 144, 0)),
		"huge-shape-product":  hdr(ent("a", "F32", "4294967296,4294967296", 0, 144)),
		"shape-overflow-bits": hdr(ent("a", "F64", "2305843009213693952,2", 0, 144)),
		"size-mismatch":       hdr(ent("a", "F32", "35", 0, 144)),
		"misaligned-f4":       hdr(ent("a", "F4", "3", 0, 144)),
		"unknown-dtype":       hdr(ent("a", "F128", "36", 0, 144)),
		"negative-offset":     `{"a":{"dtype":"F32","shape":[36],"data_offsets":[-1,144]}}`,
		"float-shape":         `{"a":{"dtype":"F32","shape":[36.0],"data_offsets":[0,144]}}`,
		"offset-too-large":    `{"a":{"dtype":"F32","shape":[36],"data_offsets":[0,18446744073709551616]}}`,
		"missing-dtype":       `{"a":{"shape":[36],"data_offsets":[0,144]}}`,
		"missing-offsets":     `{"a":{"dtype":"F32","shape":[36]}}`,
		"null-header":         `null`,
		"array-header":        `[]`,
		"string-header":       `"hello"`,
		"unterminated":        `{"a":{"dtype":"F32"`,
		"trailing-garbage":    hdr(ent("a", "F32", "36", 0, 144)) + "xx",
		"trailing-nul":        hdr(ent("a", "F32", "36", 0, 144)) + "\x00\x00",
		"duplicate-metadata":  `{"__metadata__":{},"__metadata__":{},` + ent("a", "F32", "36", 0, 144) + "}",
		"metadata-not-string": `{"__metadata__":{"k":1},` + ent("a", "F32", "36", 0, 144) + "}",
		"metadata-nested":     `{"__metadata__":{"k":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + "}," + ent("a", "F32", "36", 0, 144) + "}",
		"deeply-nested":       strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000),
		"duplicate-name":      hdr(ent("a", "F32", "18", 0, 72), ent("a", "F32", "18", 72, 144)),
		"duplicate-field":     `{"a":{"dtype":"F32","dtype":"F32","shape":[36],"data_offsets":[0,144]}}`,
		"non-utf8-name":       hdr(ent("a\xff\xfe", "F32", "36", 0, 144)),
		"tensor-not-object":   `{"a":[1,2,3]}`,
		"shape-not-array":     `{"a":{"dtype":"F32","shape":36,"data_offsets":[0,144]}}`,
		"three-offsets":       `{"a":{"dtype":"F32","shape":[36],"data_offsets":[0,72,144]}}`,
	}
	for name, h := range headers {
		g.file(name, withHeader(h, data), malformed)
	}
	g.file("enormous-metadata", withHeader(`{"__metadata__":{"k":"`+strings.Repeat("x", 8<<20)+`"},`+
		ent("a", "F32", "36", 0, 144)+`,"b":{"dtype":"F32"}}`, data), malformed)
	// One million tiny tensors; the last one leaves a gap.
	{
		var sb strings.Builder
		const n = 1_000_000
		sb.Grow(68 * n) // the header's 68 MB, built without regrowing
		sb.WriteString("{")
		for i := 0; i < n; i++ {
			if i > 0 {
				sb.WriteString(",")
			}
			b := i
			if i == n-1 {
				b++ // the gap
			}
			fmt.Fprintf(&sb, `"t%d":{"dtype":"U8","shape":[1],"data_offsets":[%d,%d]}`, i, b, b+1)
		}
		sb.WriteString("}")
		g.file("million-tensors", withHeader(sb.String(), make([]byte, 1_000_001)), malformed)
	}
	g.file("empty", nil, malformed)
	g.file("lfs-pointer", []byte("version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 988000000\n"), malformed)
	g.file("symlink-text", []byte("../../blobs/4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393"), malformed)
	g.file("crlf", []byte("\r\n"), malformed)
	g.file("json-no-prefix", []byte(`{}`), malformed)
	g.file("random-bytes", randomBytes(rng, 4096), malformed)

	// Directory-shaped cases.
	g.dirCase("dir-model-is-directory", unopenable, func(d string) error { return os.Mkdir(filepath.Join(d, "model.safetensors"), 0o755) })
	g.dirCase("dir-symlink-loop", unopenable, func(d string) error {
		return os.Symlink("model.safetensors", filepath.Join(d, "model.safetensors"))
	})
	g.dirCase("dir-symlink-cycle", unopenable, func(d string) error {
		if err := os.Symlink("b.safetensors", filepath.Join(d, "a.safetensors")); err != nil {
			return err
		}
		return os.Symlink("a.safetensors", filepath.Join(d, "b.safetensors"))
	})
	shard := func(d, name string) error { return os.WriteFile(filepath.Join(d, name), good, 0o644) }
	index := func(d string, wm string) error {
		return os.WriteFile(filepath.Join(d, "model.safetensors.index.json"), []byte(`{"metadata":{"total_size":144},"weight_map":`+wm+`}`), 0o644)
	}
	g.dirCase("index-escapes-dotdot", malformed, func(d string) error { return index(d, `{"model.norm.weight":"../outside.safetensors"}`) })
	g.dirCase("index-escapes-absolute", malformed, func(d string) error { return index(d, `{"model.norm.weight":"/etc/passwd"}`) })
	g.dirCase("index-escapes-symlink", malformed, func(d string) error {
		outside := filepath.Join(g.dir, "outside.safetensors")
		if err := os.WriteFile(outside, good, 0o644); err != nil {
			return err
		}
		if err := os.Symlink(outside, filepath.Join(d, "model-00001-of-00001.safetensors")); err != nil {
			return err
		}
		return index(d, `{"model.norm.weight":"model-00001-of-00001.safetensors"}`)
	})
	g.dirCase("index-missing-shard", malformed, func(d string) error {
		return index(d, `{"model.norm.weight":"model-00001-of-00002.safetensors"}`)
	})
	g.dirCase("index-not-json", malformed, func(d string) error {
		if err := shard(d, "model-00001-of-00001.safetensors"); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(d, "model.safetensors.index.json"), []byte("{not json"), 0o644)
	})
	g.dirCase("index-shard-is-directory", malformed, func(d string) error {
		if err := os.Mkdir(filepath.Join(d, "model-00001-of-00001.safetensors"), 0o755); err != nil {
			return err
		}
		return index(d, `{"model.norm.weight":"model-00001-of-00001.safetensors"}`)
	})
	g.dirCase("index-weight-map-wrong-type", malformed, func(d string) error {
		if err := shard(d, "model-00001-of-00001.safetensors"); err != nil {
			return err
		}
		return index(d, `{"model.norm.weight":7}`)
	})
	g.dirCase("index-lists-absent-tensor", withMods(malformed, repairable), func(d string) error {
		if err := shard(d, "model-00001-of-00001.safetensors"); err != nil {
			return err
		}
		return index(d, `{"model.norm.weight":"model-00001-of-00001.safetensors","ghost.weight":"model-00001-of-00001.safetensors"}`)
	})
	g.dirCase("index-shard-lfs", malformed, func(d string) error {
		if err := os.WriteFile(filepath.Join(d, "model-00001-of-00001.safetensors"), []byte("version https://git-lfs.github.com/spec/v1\nsize 10\n"), 0o644); err != nil {
			return err
		}
		return index(d, `{"model.norm.weight":"model-00001-of-00001.safetensors"}`)
	})
	// No weights at all: bisect skips it as an incomplete checkpoint (exit 0).
	g.dirCase("dir-no-weights", withMods(unopenable, func(c *Case) { c.Bisect = Expect{0, ""} }),
		func(d string) error { return os.WriteFile(filepath.Join(d, "config.json"), []byte("{}"), 0o644) })
	g.ggufCases()
	g.torchCases()
	return g.cases, g.err
}

type gen struct {
	dir   string
	cases []Case
	err   error
}

// withMods is kind changed by mods.
func withMods(kind Case, mods ...func(*Case)) Case {
	for _, m := range mods {
		m(&kind)
	}
	return kind
}

// file adds a .safetensors file case with the expectations of kind, changed by mods.
func (g *gen) file(name string, content []byte, kind Case, mods ...func(*Case)) {
	g.fileExt(name, ".safetensors", content, kind, mods...)
}

// fileExt adds a file case named name+ext with the expectations of kind,
// changed by mods.
func (g *gen) fileExt(name, ext string, content []byte, kind Case, mods ...func(*Case)) {
	if g.err != nil {
		return
	}
	p := filepath.Join(g.dir, name+ext)
	if err := os.WriteFile(p, content, 0o644); err != nil {
		g.err = err
		return
	}
	c := withMods(kind, mods...)
	c.Name, c.Path = name, p
	g.cases = append(g.cases, c)
}

// dirCase adds a directory case built by build, with the expectations of kind.
func (g *gen) dirCase(name string, kind Case, build func(dir string) error) {
	if g.err != nil {
		return
	}
	d := filepath.Join(g.dir, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		g.err = err
		return
	}
	if err := build(d); err != nil {
		g.err = fmt.Errorf("%s: %w", name, err)
		return
	}
	kind.Name, kind.Path = name, d
	g.cases = append(g.cases, kind)
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// validFile reports whether b passes every read rule (used to drop flips that
// happen to leave a valid file).
func validFile(b []byte) bool {
	h, err := formats.ReadHeader("x", bytes.NewReader(b), int64(len(b)))
	return err == nil && h != nil && len(h.Duplicates) == 0
}
