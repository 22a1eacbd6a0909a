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
// crypto/sha256, for whole files of sizes around the buffer's and for runs
// inside a file, and that stopping midway returns.
func TestHasher(t *testing.T) {
	dir := t.TempDir()
	p := &Plan{}
	type check struct {
		dst  *string
		want string
	}
	var checks []check
	var groups [2][]hashJob
	for i, n := range []int{0, 1, 4095, 4096, 4097, 100_003} {
		path, sum := randomFile(t, dir, "f"+string(rune('a'+i)), n, uint64(i))
		in, err := openInput(path, p)
		if err != nil {
			t.Fatal(err)
		}
		defer in.f.Close()
		d := new(string)
		groups[i%2] = append(groups[i%2], hashJob{in: in, off: 0, n: in.size, dst: d})
		checks = append(checks, check{d, sum})
		if n > 10 {
			data, _ := os.ReadFile(path)
			part := sha256.Sum256(data[3 : n-5])
			d := new(string)
			groups[1-i%2] = append(groups[1-i%2], hashJob{in: in, off: 3, n: int64(n - 8), dst: d})
			checks = append(checks, check{d, hex.EncodeToString(part[:])})
		}
	}
	h := startHashing(4096, groups[0], groups[1])
	if err := h.wait(); err != nil {
		t.Fatal(err)
	}
	for i, c := range checks {
		if *c.dst != c.want {
			t.Errorf("job %d: digest %s, want %s", i, *c.dst, c.want)
		}
	}
	h.abort() // after wait: a no-op

	big, _ := randomFile(t, dir, "big", 4<<20, 9)
	in, err := openInput(big, p)
	if err != nil {
		t.Fatal(err)
	}
	defer in.f.Close()
	h = startHashing(512, []hashJob{{in: in, n: in.size, dst: new(string)}})
	h.abort()
	h.abort()
}

// TestInputShrinks: a file cut short after it was opened is an ErrInputChanged,
// never a short read taken for data.
func TestInputShrinks(t *testing.T) {
	path, _ := randomFile(t, t.TempDir(), "f", 10_000, 3)
	in, err := openInput(path, &Plan{})
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
	h := startHashing(4096, []hashJob{{in: in, n: in.size, dst: new(string)}})
	if err := h.wait(); !errors.Is(err, ErrInputChanged) {
		t.Errorf("hashing a shrunk file: error %v, want ErrInputChanged", err)
	}
}
