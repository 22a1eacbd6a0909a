package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
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

// BenchmarkScanRemote scans the same ~253 MB checkpoint from the local disk
// and from HTTP servers on localhost, and measures in the same run what
// loopback itself carries: the ratios of their throughputs are what reading
// over the network costs beyond the network (the target: HTTP at least 70%
// of local).
//
//   - local: ckpt scan of the file.
//   - http: ckpt scan of its URL on net/http's ServeContent (which sends a
//     range of an *os.File with sendfile).
//   - http-read-limit: the file fetched from that server as ckpt fetches it
//     (6 parallel range requests of 8 MiB, keep-alive connections, into 8 MiB
//     buffers) and nothing else done with it.
//   - tcp-limit: the file's bytes sent by sendfile over 6 loopback TCP
//     connections, without HTTP, each received into a 256 KiB buffer (the
//     scan's read size, which stays in the cache): what any client could
//     get from loopback on this machine.
//   - tcp-memory-limit, unix-memory-limit: the most this machine's kernel
//     carries between two processes at all: bytes already in the sender's
//     memory (no file, no HTTP) written over 2 loopback TCP connections, or
//     2 Unix-domain socket connections, each received into a 4 MiB buffer.
//   - peer-http, peer-http-read-limit: the same as http and http-read-limit
//     against another server, when CKPT_BENCH_PEER is its URL for the
//     directory CKPT_BENCH_DIR (bench/remote.sh starts nginx for it).
//
// CKPT_BENCH_DIR keeps the checkpoint (written there when missing).
//
//	go test ./cmd/ckpt -run '^$' -bench ScanRemote -benchtime 3x -count 3
//	bash bench/remote.sh
func BenchmarkScanRemote(b *testing.B) {
	root := os.Getenv("CKPT_BENCH_DIR")
	if root == "" {
		root = b.TempDir()
	}
	file := filepath.Join(root, "ckpt", "model.safetensors")
	if _, err := os.Stat(file); err != nil {
		arch := synth.Arch{Name: "bench-remote", VocabSize: 32000, Hidden: 1024, Intermediate: 4096, Layers: 4, Heads: 16, KVHeads: 4}
		if err := synth.WriteCheckpoint(filepath.Join(root, "ckpt"), synth.Options{Arch: arch, Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
	st, err := os.Stat(file)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(&fileServer{root: root})
	defer srv.Close()
	scan := func(name, path string) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(st.Size())
			before := remote.Transferred()
			for b.Loop() {
				if err := run([]string{"scan", "--json", path}, io.Discard, io.Discard); err != nil {
					b.Fatal(err)
				}
			}
			if now := remote.Transferred(); path != file {
				b.ReportMetric(float64(now.Bytes-before.Bytes)/float64(b.N)/float64(st.Size()), "fetched/size")
				b.ReportMetric(float64(now.Requests-before.Requests)/float64(b.N), "requests/op")
			}
		})
	}
	readLimit := func(name, url string) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(st.Size())
			t := http.DefaultTransport.(*http.Transport).Clone()
			t.MaxIdleConnsPerHost = 16
			t.DisableCompression = true
			client := &http.Client{Transport: t}
			defer t.CloseIdleConnections()
			bufs := make([][]byte, 6)
			for i := range bufs {
				bufs[i] = make([]byte, 8<<20)
			}
			for b.Loop() {
				parallelParts(b, st.Size(), 8<<20, len(bufs), func(w int, off, n int64) error {
					req, err := http.NewRequest(http.MethodGet, url, nil)
					if err != nil {
						return err
					}
					req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
					resp, err := client.Do(req)
					if err != nil {
						return err
					}
					defer resp.Body.Close()
					if resp.StatusCode != http.StatusPartialContent {
						return fmt.Errorf("HTTP %d", resp.StatusCode)
					}
					_, err = io.ReadFull(resp.Body, bufs[w][:n])
					return err
				})
			}
		})
	}
	scan("local", file)
	scan("http", srv.URL+"/ckpt/model.safetensors")
	readLimit("http-read-limit", srv.URL+"/ckpt/model.safetensors")
	if peer := os.Getenv("CKPT_BENCH_PEER"); peer != "" {
		scan("peer-http", peer+"/ckpt/model.safetensors")
		readLimit("peer-http-read-limit", peer+"/ckpt/model.safetensors")
	}
	b.Run("tcp-limit", func(b *testing.B) {
		b.SetBytes(st.Size())
		addr := sendfileServer(b, file)
		conns := make([]*bufio.ReadWriter, 6)
		for i := range conns {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			conns[i] = bufio.NewReadWriter(bufio.NewReaderSize(c, 256<<10), bufio.NewWriter(c))
		}
		bufs := make([][]byte, len(conns))
		for i := range bufs {
			bufs[i] = make([]byte, 256<<10)
		}
		for b.Loop() {
			parallelParts(b, st.Size(), 8<<20, len(conns), func(w int, off, n int64) error {
				fmt.Fprintf(conns[w], "%d %d\n", off, n)
				if err := conns[w].Flush(); err != nil {
					return err
				}
				for n > 0 {
					k, err := conns[w].Read(bufs[w][:min(n, int64(len(bufs[w])))])
					if err != nil {
						return err
					}
					n -= int64(k)
				}
				return nil
			})
		}
	})
	memoryLimit(b, "tcp-memory-limit", "tcp", st.Size())
	memoryLimit(b, "unix-memory-limit", "unix", st.Size())
}

// memoryLimit measures what 2 connections of network ("tcp" on loopback or
// "unix") carry of total bytes written from memory by memoryServer, each
// received into a 4 MiB buffer: the ceiling of any client reading from a
// server on this machine.
func memoryLimit(b *testing.B, name, network string, total int64) {
	b.Run(name, func(b *testing.B) {
		b.SetBytes(total)
		ln := memoryServer(b, network)
		conns := make([]*bufio.ReadWriter, 2)
		bufs := make([][]byte, len(conns))
		for i := range conns {
			c, err := net.Dial(network, ln)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			conns[i] = bufio.NewReadWriter(bufio.NewReaderSize(c, 16), bufio.NewWriter(c))
			bufs[i] = make([]byte, 4<<20)
		}
		for b.Loop() {
			parallelParts(b, total, 8<<20, len(conns), func(w int, _, n int64) error {
				fmt.Fprintf(conns[w], "%d\n", n)
				if err := conns[w].Flush(); err != nil {
					return err
				}
				var err error
				for n > 0 && err == nil { // an empty bufio buffer reads straight into bufs[w]
					var k int
					k, err = conns[w].Read(bufs[w][:min(n, int64(len(bufs[w])))])
					n -= int64(k)
				}
				return err
			})
		}
	})
}

// memoryServer answers each line "LENGTH" on a connection of network with
// LENGTH bytes written from a 4 MiB buffer in memory, and returns the
// address it listens on.
func memoryServer(b *testing.B, network string) string {
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(b.TempDir(), "memory.sock")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(i)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					var n int64
					if _, err := fmt.Fscanf(r, "%d\n", &n); err != nil {
						return
					}
					for n > 0 {
						k, err := c.Write(data[:min(n, int64(len(data)))])
						if err != nil {
							return
						}
						n -= int64(k)
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// parallelParts calls fetch for each part of size bytes of a file of total
// bytes, from workers goroutines (w is the worker's number), parts handed out
// in order.
func parallelParts(b *testing.B, total, size int64, workers int, fetch func(w int, off, n int64) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				off := next.Add(size) - size
				if off >= total {
					return
				}
				if err := fetch(w, off, min(size, total-off)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// sendfileServer serves byte ranges of file over plain TCP: each request is
// a line "OFFSET LENGTH", answered with those bytes by sendfile (an
// *os.File, limited, copied to a TCP connection).
func sendfileServer(b *testing.B, file string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				f, err := os.Open(file)
				if err != nil {
					return
				}
				defer f.Close()
				r := bufio.NewReader(c)
				for {
					var off, n int64
					if _, err := fmt.Fscanf(r, "%d %d\n", &off, &n); err != nil {
						return
					}
					if _, err := f.Seek(off, io.SeekStart); err != nil {
						return
					}
					if _, err := io.CopyN(c, f, n); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}
