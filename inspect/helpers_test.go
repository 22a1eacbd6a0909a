package inspect

import (
	"bytes"
	"encoding/binary"
	"github.com/ckpt-tool/ckpt/internal/testenv"
	"os"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
)

// testTensor is one tensor for writeST.
type testTensor struct {
	name  string
	dt    formats.DType
	shape []uint64
	data  []byte
}

// writeST writes a safetensors file holding ts (data order as the reference
// writer lays it out). unpadded leaves the header at an odd length, so that
// tensor data is not aligned in the file, as older writers did.
func writeST(t testing.TB, path string, ts []testTensor, unpadded bool) {
	t.Helper()
	specs := make([]formats.TensorSpec, len(ts))
	byName := map[string][]byte{}
	for i, x := range ts {
		specs[i] = formats.TensorSpec{Name: x.name, DType: x.dt, Shape: x.shape}
		byName[x.name] = x.data
	}
	order := formats.PlanOrder(specs)
	header, _, err := formats.EncodeHeader(order, map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	if unpadded {
		header = bytes.TrimRight(header, " ")
		for len(header)%8 != 3 {
			header = append(header, ' ')
		}
	}
	var buf bytes.Buffer
	binary.Write(&buf, binary.LittleEndian, uint64(len(header)))
	buf.Write(header)
	for _, s := range order {
		buf.Write(byName[s.Name])
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// realdata is the shared corpus of real files (absent: a failure in CI, a skip elsewhere).
func realdata(t testing.TB) string { return testenv.Realdata(t) }
