package diff

import (
	"bytes"
	"encoding/binary"
	"github.com/ckpt-tool/ckpt/internal/testenv"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/x448/float16"
)

// tensor is a test tensor: raw little-endian bytes of a dtype and shape.
type tensor struct {
	name  string
	dt    formats.DType
	shape []uint64
	raw   []byte
}

// writeST writes tensors as a safetensors file with the project's writer.
func writeST(t testing.TB, path string, ts ...tensor) {
	t.Helper()
	var specs []formats.TensorSpec
	byName := map[string][]byte{}
	for _, x := range ts {
		specs = append(specs, formats.TensorSpec{Name: x.name, DType: x.dt, Shape: x.shape})
		byName[x.name] = x.raw
	}
	var buf bytes.Buffer
	w, err := formats.NewWriter(&buf, specs, map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range w.Order() {
		if err := w.WriteTensor(s.Name, bytes.NewReader(byName[s.Name])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// encode turns values into raw bytes of a float or integer dtype (BF16 by
// truncation, F16 by x448/float16 rounding).
func encode(dt formats.DType, vals []float64) []byte {
	var out []byte
	for _, v := range vals {
		switch dt {
		case formats.F64:
			out = binary.LittleEndian.AppendUint64(out, math.Float64bits(v))
		case formats.F32:
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(float32(v)))
		case formats.BF16:
			out = binary.LittleEndian.AppendUint16(out, uint16(math.Float32bits(float32(v))>>16))
		case formats.F16:
			out = binary.LittleEndian.AppendUint16(out, float16.Fromfloat32(float32(v)).Bits())
		case formats.I32:
			out = binary.LittleEndian.AppendUint32(out, uint32(int32(v)))
		case formats.I64:
			out = binary.LittleEndian.AppendUint64(out, uint64(int64(v)))
		default:
			panic("encode: unsupported dtype " + string(dt))
		}
	}
	return out
}

func normals(r *rand.Rand, n int, std float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = r.NormFloat64() * std
	}
	return out
}

func f(dt formats.DType, name string, shape []uint64, vals []float64) tensor {
	return tensor{name: name, dt: dt, shape: shape, raw: encode(dt, vals)}
}

// statsClose reports whether two Stats agree: counts exactly, sums within rel.
func statsClose(a, b Stats, rel float64) bool {
	close := func(x, y float64) bool {
		if x == y {
			return true
		}
		return math.Abs(x-y) <= rel*math.Max(math.Abs(x), math.Abs(y))
	}
	return a.Pairs == b.Pairs && a.Differ == b.Differ && a.Appeared == b.Appeared && a.Disappeared == b.Disappeared &&
		a.NonFiniteA == b.NonFiniteA && a.NonFiniteB == b.NonFiniteB && a.MaxAbs == b.MaxAbs &&
		close(a.SumSqA, b.SumSqA) && close(a.SumSqB, b.SumSqB) && close(a.SumSqD, b.SumSqD) && close(a.Dot, b.Dot)
}

// moduleRealdata is the shared corpus of real files (the test skips when absent).
func moduleRealdata(t testing.TB) string { return testenv.Realdata(t) }

// statsCloseFor is statsClose for a comparison of dtype dt by the engine's
// kernels: where a narrow loop folds dt (BF16 and F16 on a CPU with the
// assembly loops), the sums within its proven bounds (kernel_narrow.go),
// which are looser than rel, and max |B−A| within one float32 rounding.
func statsCloseFor(dt formats.DType, a, b Stats, rel float64) bool {
	if asmNarrow(dt) != nil {
		return narrowAgrees(a, b)
	}
	return statsClose(a, b, rel)
}
