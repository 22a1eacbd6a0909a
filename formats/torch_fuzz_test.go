package formats_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/hostile"
)

// FuzzTorchFile feeds arbitrary bytes, seeded with torch zips and legacy
// files, to the PyTorch reader: never a panic, and every located tensor lies
// inside the file.
func FuzzTorchFile(f *testing.F) {
	dir := f.TempDir()
	zp, lp := filepath.Join(dir, "a.pt"), filepath.Join(dir, "b.pt")
	if err := hostile.WriteTorchMalicious(zp, lp, "true"); err != nil {
		f.Fatal(err)
	}
	for _, p := range []string{zp, lp} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	good, err := hostile.TorchZip([]hostile.ZipRecord{
		{Name: "m/data.pkl", Data: hostile.TensorPickle(2, "")},
		{Name: "m/data/0", Data: make([]byte, 8)},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "x.pt")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		file, err := formats.ReadFileHeader(p, "x.pt")
		if err != nil {
			return
		}
		for _, tn := range file.Tensors() {
			if tn.Offset < 0 || tn.End < tn.Begin || int64(tn.End) > file.Size {
				t.Fatalf("tensor %q at %d..%d outside the %d-byte file", tn.Name, tn.Begin, tn.End, file.Size)
			}
		}
	})
}

// The torch.save zip's findings name the record at fault.
func TestTorchZipFindingsNameTheRecord(t *testing.T) {
	good, err := hostile.TorchZip([]hostile.ZipRecord{
		{Name: "m/data.pkl", Data: hostile.TensorPickle(2, "")},
		{Name: "m/data/0", Data: make([]byte, 8)},
		{Name: "m/data/0", Data: make([]byte, 8)},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "dup.pt")
	if err := os.WriteFile(p, good, 0o644); err != nil {
		t.Fatal(err)
	}
	file, err := formats.ReadFileHeader(p, "dup.pt")
	if err != nil {
		t.Fatal(err)
	}
	if file.Format() != formats.ContainerTorch {
		t.Fatalf("container %s", file.Format())
	}
	named := false
	for _, pr := range file.Problems {
		if pr.Severity == formats.SevError && strings.Contains(pr.Err.Detail, `"m/data/0"`) {
			named = true
		}
	}
	if !named {
		t.Errorf("the duplicated record is not named: %+v", file.Problems)
	}
}

// A zip with more records than the classic end record can count uses the
// ZIP64 end record; the reader follows it.
func TestTorchZip64Directory(t *testing.T) {
	recs := []hostile.ZipRecord{
		{Name: "m/data.pkl", Data: hostile.TensorPickle(2, "")},
		{Name: "m/data/0", Data: make([]byte, 8)},
	}
	for i := range 65600 {
		recs = append(recs, hostile.ZipRecord{Name: fmt.Sprintf("m/extra/%d", i)})
	}
	b, err := hostile.TorchZip(recs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b[len(b)-200:], []byte("PK\x06\x06")) {
		t.Fatal("the archive has no ZIP64 end record")
	}
	p := filepath.Join(t.TempDir(), "z64.pt")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := formats.ReadFileHeader(p, "z64.pt")
	if err != nil {
		t.Fatal(err)
	}
	if f.Err != nil || len(f.Tensors()) != 1 {
		t.Fatalf("err %v, %d tensors", f.Err, len(f.Tensors()))
	}
}
