package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ckpt-tool/ckpt/internal/synth"
	"github.com/ckpt-tool/ckpt/remote"
)

// BenchmarkScanRemote scans the same ~260 MB checkpoint from the local disk
// and from an HTTP server on localhost (net/http's ServeContent): the ratio
// of their throughputs is what reading over the network costs beyond the
// network itself (the target: HTTP at least 70% of local).
//
//	go test ./cmd/ckpt -run '^$' -bench ScanRemote -benchtime 5x
func BenchmarkScanRemote(b *testing.B) {
	root := b.TempDir()
	arch := synth.Arch{Name: "bench-remote", VocabSize: 32000, Hidden: 1024, Intermediate: 4096, Layers: 4, Heads: 16, KVHeads: 4}
	if err := synth.WriteCheckpoint(filepath.Join(root, "ckpt"), synth.Options{Arch: arch, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(root, "ckpt", "model.safetensors")
	st, err := os.Stat(file)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(&fileServer{root: root})
	defer srv.Close()
	for _, c := range []struct{ name, path string }{
		{"local", file},
		{"http", srv.URL + "/ckpt/model.safetensors"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(st.Size())
			before := remote.Transferred()
			for b.Loop() {
				if err := run([]string{"scan", "--json", c.path}, io.Discard, io.Discard); err != nil {
					b.Fatal(err)
				}
			}
			if now := remote.Transferred(); c.name == "http" {
				b.ReportMetric(float64(now.Bytes-before.Bytes)/float64(b.N)/float64(st.Size()), "fetched/size")
				b.ReportMetric(float64(now.Requests-before.Requests)/float64(b.N), "requests/op")
			}
		})
	}
	// The network's limit in the same run: the file fetched by 6 parallel
	// range requests of 8 MiB (what the scan keeps in flight), into memory,
	// by the same HTTP client stack, and nothing else done with it.
	b.Run("http-read-limit", func(b *testing.B) {
		b.SetBytes(st.Size())
		client := &http.Client{}
		for b.Loop() {
			var next atomic.Int64
			var wg sync.WaitGroup
			for range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					buf := make([]byte, 8<<20)
					for {
						off := next.Add(8<<20) - 8<<20
						if off >= st.Size() {
							return
						}
						n := min(8<<20, st.Size()-off)
						req, _ := http.NewRequest(http.MethodGet, srv.URL+"/ckpt/model.safetensors", nil)
						req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
						resp, err := client.Do(req)
						if err != nil {
							b.Error(err)
							return
						}
						io.ReadFull(resp.Body, buf[:n])
						resp.Body.Close()
					}
				}()
			}
			wg.Wait()
		}
	})
}
