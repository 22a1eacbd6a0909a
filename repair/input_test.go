package repair

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func randomFile(t *testing.T, dir, name string, n int, seed uint64) (string, string) {
	t.Helper()
	data := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, seed))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return path, hex.EncodeToString(sum[:])
}

// TestHasher checks the digests computed beside the copy against
// crypto/sha256 over the whole file, for sizes around the buffer's, and that
// stopping midway returns.
func TestHasher(t *testing.T) {
	dir := t.TempDir()
	p := &Plan{}
	var groups [2][]*input
	want := map[*input]string{}
	for i, n := range []int{0, 1, 4095, 4096, 4097, 100_003} {
		path, sum := randomFile(t, dir, "f"+string(rune('a'+i)), n, uint64(i))
		in, err := openInput("bad", path, p)
		if err != nil {
			t.Fatal(err)
		}
		defer in.f.Close()
		groups[i%2] = append(groups[i%2], in)
		want[in] = sum
	}
	h := startHashing(4096, groups[0], groups[1])
	if err := h.wait(); err != nil {
		t.Fatal(err)
	}
	for in, sum := range want {
		if in.SHA256 != sum {
			t.Errorf("%s (%d bytes): digest %s, want %s", in.Path, in.size, in.SHA256, sum)
		}
	}
	h.abort() // after wait: a no-op

	big, _ := randomFile(t, dir, "big", 4<<20, 9)
	in, err := openInput("good", big, p)
	if err != nil {
		t.Fatal(err)
	}
	defer in.f.Close()
	h = startHashing(512, []*input{in})
	h.abort()
	h.abort()
}

// TestInputShrinks: a file cut short after it was opened is an ErrInputChanged,
// never a short read taken for data.
func TestInputShrinks(t *testing.T) {
	path, _ := randomFile(t, t.TempDir(), "f", 10_000, 3)
	in, err := openInput("bad", path, &Plan{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.f.Close()
	if err := os.Truncate(path, 5000); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1000)
	if err := in.readAt(b, 4500); !errors.Is(err, ErrInputChanged) {
		t.Errorf("read across the new end: error %v, want ErrInputChanged", err)
	}
	h := startHashing(4096, []*input{in})
	if err := h.wait(); !errors.Is(err, ErrInputChanged) {
		t.Errorf("hashing a shrunk file: error %v, want ErrInputChanged", err)
	}
}
