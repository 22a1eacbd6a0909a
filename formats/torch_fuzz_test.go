package formats_test

import (
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
