package repair

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// TestHashPipe checks that the digest of a fed input is the SHA-256 of the
// whole file whatever the copier reads: in order, skipping ahead, going back,
// overlapping, or nothing; and that whole-file hashing on the side agrees.
func TestHashPipe(t *testing.T) {
	dir := t.TempDir()
	data := make([]byte, 300_001)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	type read struct{ off, n int }
	patterns := map[string][]read{
		"nothing":     nil,
		"in order":    {{0, 100_000}, {100_000, 100_000}, {200_000, 100_001}},
		"skip ahead":  {{10, 5}, {50_000, 1000}, {299_000, 1001}},
		"go back":     {{200_000, 1000}, {0, 1000}, {100, 50_000}},
		"overlapping": {{0, 1000}, {500, 1000}, {1400, 10}, {1300, 2000}},
	}
	p := &Plan{}
	for name, reads := range patterns {
		t.Run(name, func(t *testing.T) {
			hp := newHashPipe(4096)
			fed, err := openHashed("bad", path, p)
			if err != nil {
				t.Fatal(err)
			}
			defer fed.close()
			fed.fed = true
			whole, err := openHashed("good", path, p)
			if err != nil {
				t.Fatal(err)
			}
			defer whole.close()
			hp.hashAll([]*hashedInput{whole})
			w := &writer{pipe: hp}
			for _, r := range reads {
				for off := r.off; off < r.off+r.n; off += 4096 {
					n := min(4096, r.off+r.n-off)
					c, err := w.read(fed, int64(off), n)
					if err != nil {
						t.Fatal(err)
					}
					if string(c.b[:n]) != string(data[off:off+n]) {
						t.Fatalf("read at %d returned other bytes", off)
					}
					c.release()
				}
			}
			if err := hp.finish([]*hashedInput{fed}); err != nil {
				t.Fatal(err)
			}
			if got := fed.sum(); got != want {
				t.Errorf("fed digest %s, want %s", got, want)
			}
			if got := whole.sum(); got != want {
				t.Errorf("whole-file digest %s, want %s", got, want)
			}
		})
	}
	// Aborting midway returns and leaves no goroutine blocked.
	hp := newHashPipe(4096)
	in, _ := openHashed("bad", path, p)
	defer in.close()
	in.fed = true
	other, _ := openHashed("good", path, p)
	defer other.close()
	hp.hashAll([]*hashedInput{other})
	w := &writer{pipe: hp}
	for i := 0; i < 10; i++ {
		c, err := w.read(in, int64(i)*4096, 4096)
		if err != nil {
			t.Fatal(err)
		}
		c.release()
	}
	hp.abort()
	hp.abort()
}
