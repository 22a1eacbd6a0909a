package inspect

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
)

// residentFileKB reads this process's resident file-backed memory (Linux).
func residentFileKB(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status:", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skip("no RssFile in /proc/self/status")
	return 0
}

// A mapped scan maps one chunk at a time and unmaps it when done, so the file's
// pages do not pile up in the process however large the file is.
func TestMappedScanKeepsResidentMemoryBounded(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/status")
	}
	const size = 64 << 20
	path := filepath.Join(t.TempDir(), "big.safetensors")
	writeST(t, path, []testTensor{{name: "w", dt: formats.BF16, shape: []uint64{size / 2}, data: make([]byte, size)}}, false)
	before := residentFileKB(t)
	var peak int64
	_, err := ScanPath(context.Background(), path, Options{Workers: 1, ChunkBytes: 1 << 20, Source: formats.Mmap,
		Progress: func(int64) { peak = max(peak, residentFileKB(t)) }})
	if err != nil {
		t.Fatal(err)
	}
	if grew := peak - before; grew > 16<<10 {
		t.Errorf("resident file memory grew by %d kB while scanning a %d MB file through mmap; want it bounded by the chunks in flight", grew, size>>20)
	}
}
