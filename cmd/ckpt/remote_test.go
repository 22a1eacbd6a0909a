package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/hostile"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// End-to-end tests of remote paths: the commands read checkpoints served by
// an HTTP server (net/http's ServeContent, which honours Range, If-Match and
// If-Unmodified-Since) and must say what they say of the same files read
// locally; faults injected between client and server (503s, connections cut
// mid-body, an object replaced mid-scan) are retried or become the finding a
// local file replaced mid-scan is, in bounded time.

// remoteArch is big enough that a scan streams parts of several MiB (about
// 25 MiB of BF16) and small enough for a unit test.
var remoteArch = synth.Arch{Name: "remote-test", VocabSize: 8192, Hidden: 512, Intermediate: 1024, Layers: 2, Heads: 8, KVHeads: 2}

// fileServer serves root's files (not directories) with an ETag of their
// modification time and size, so a rewritten file has a new one.
type fileServer struct {
	root string
	// fault, when set, may answer a request itself (returning true).
	fault func(w http.ResponseWriter, r *http.Request) bool
	gets  atomic.Int64 // range requests answered
}

func (s *fileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.fault != nil && s.fault(w, r) {
		return
	}
	p := filepath.Join(s.root, filepath.FromSlash(strings.TrimPrefix(r.URL.Path, "/")))
	f, err := os.Open(p)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Range") != "" {
		s.gets.Add(1)
	}
	if os.Getenv("CKPT_TEST_LOG") != "" {
		fmt.Fprintln(os.Stderr, r.Method, r.URL.Path, r.Header.Get("Range"))
	}
	w.Header().Set("ETag", fmt.Sprintf(`"%x-%x"`, st.ModTime().UnixNano(), st.Size()))
	http.ServeContent(w, r, st.Name(), st.ModTime(), f)
}

// serve starts a server for root; URLs are srv.URL + "/" + relative path.
func serve(t *testing.T, fs *fileServer) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(fs)
	t.Cleanup(srv.Close)
	return srv
}

// writeTorchBin writes a torch.save zip holding one float32 tensor of 100
// elements (all finite) at path.
func writeTorchBin(t *testing.T, path string) {
	t.Helper()
	data := make([]byte, 4*100)
	for i := range 100 {
		binary.LittleEndian.PutUint32(data[4*i:], 0x3f800000+uint32(i)<<12)
	}
	b, err := hostile.TorchZip([]hostile.ZipRecord{
		{Name: "archive/data.pkl", Data: hostile.TensorPickle(100, "")},
		{Name: "archive/data/0", Data: data},
		{Name: "archive/version", Data: []byte("3\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// remoteFixtures writes under root: big/ (one model.safetensors of
// remoteArch), sharded/ (tiny, 3 shards and an index) and torch/ (a
// pytorch_model.bin).
func remoteFixtures(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := synth.WriteCheckpoint(filepath.Join(root, "big"), synth.Options{Arch: remoteArch, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	if err := synth.WriteCheckpoint(filepath.Join(root, "sharded"), synth.Options{Arch: synth.Tiny, Seed: 5, Shards: 3}); err != nil {
		t.Fatal(err)
	}
	writeTorchBin(t, filepath.Join(root, "torch", "pytorch_model.bin"))
	return root
}

var timingKey = regexp.MustCompile(`(?i)(seconds|elapsed|duration|_ms|_s|throughput|per_second)$`)

// normalizeJSON decodes a --json document, replaces base (a directory or a
// URL) by ROOT in every string and drops fields that are timings.
func normalizeJSON(t *testing.T, doc string, bases ...string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, doc)
	}
	var walk func(any) any
	walk = func(x any) any {
		switch x := x.(type) {
		case map[string]any:
			for k, e := range x {
				if timingKey.MatchString(k) || k == "network" {
					delete(x, k)
					continue
				}
				x[k] = walk(e)
			}
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
		case string:
			for _, b := range bases {
				x = strings.ReplaceAll(x, b, "ROOT")
			}
			return x
		}
		return x
	}
	return walk(v)
}

func jsonText(v any) string {
	b, _ := json.MarshalIndent(v, "", " ")
	return string(b)
}

// remoteRun runs ckpt with a time limit: a remote read must never hang.
func remoteRun(t *testing.T, args ...string) cliResult {
	t.Helper()
	return cliRunBounded(t, 2*time.Minute, strings.Join(args, " "), args...)
}

// sameAsLocal checks that cmd with --json on the remote path prints what it
// prints on the local path, apart from the paths, with the same exit status.
func sameAsLocal(t *testing.T, cmd, local, url string, want int) {
	t.Helper()
	if strings.HasSuffix(url, "/") {
		local += "/"
	}
	l := remoteRun(t, cmd, "--json", local)
	l.wantCode(t, want)
	r := remoteRun(t, cmd, "--json", url)
	r.wantCode(t, want)
	lj := jsonText(normalizeJSON(t, l.stdout, strings.TrimSuffix(local, "/")))
	rj := jsonText(normalizeJSON(t, r.stdout, strings.TrimSuffix(url, "/")))
	if lj != rj {
		if d := os.Getenv("CKPT_TEST_DUMP"); d != "" {
			os.WriteFile(filepath.Join(d, "local.json"), []byte(lj), 0o644)
			os.WriteFile(filepath.Join(d, "remote.json"), []byte(rj), 0o644)
		}
		t.Errorf("%s --json of %s differs from the local one:\nlocal:\n%.3000s\nremote:\n%.3000s", cmd, url, lj, rj)
	}
}

func TestRemoteHTTPScanMatchesLocal(t *testing.T) {
	root := remoteFixtures(t)
	srv := serve(t, &fileServer{root: root})
	cases := []struct{ name, local, url string }{
		{"single file", filepath.Join(root, "big", "model.safetensors"), srv.URL + "/big/model.safetensors"},
		{"single-file directory", filepath.Join(root, "big"), srv.URL + "/big/"},
		{"sharded directory", filepath.Join(root, "sharded"), srv.URL + "/sharded/"},
		{"torch file", filepath.Join(root, "torch", "pytorch_model.bin"), srv.URL + "/torch/pytorch_model.bin"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sameAsLocal(t, "scan", c.local, c.url, 0)
			sameAsLocal(t, "inspect", filepath.Join(c.local), c.url, 0)
		})
	}
	t.Run("scan text", func(t *testing.T) {
		r := remoteRun(t, "scan", srv.URL+"/big/")
		r.wantCode(t, 0)
		if !regexp.MustCompile(`read [0-9,]+ bytes over the network in [0-9]+ requests`).MatchString(r.stdout) {
			t.Errorf("scan does not say what it read:\n%s", r.stdout)
		}
	})
	t.Run("diff", func(t *testing.T) {
		a, b := filepath.Join(root, "big", "model.safetensors"), srv.URL+"/big/model.safetensors"
		r := remoteRun(t, "diff", "--json", a, b)
		r.wantCode(t, 0)
		if !strings.Contains(r.stdout, `"identical"`) || strings.Contains(r.stdout, `"status":"changed"`) {
			t.Errorf("diff of a file and its served copy:\n%.2000s", r.stdout)
		}
	})
	t.Run("bisect", func(t *testing.T) {
		// Plain HTTP cannot list a run: bisect takes the checkpoint URLs.
		run := filepath.Join(root, "run")
		if _, err := synth.WriteRun(run, synth.RunOptions{Seed: 8}); err != nil {
			t.Fatal(err)
		}
		es, err := os.ReadDir(run)
		if err != nil {
			t.Fatal(err)
		}
		var locals, urls []string
		for _, e := range es {
			locals = append(locals, filepath.Join(run, e.Name()))
			urls = append(urls, srv.URL+"/run/"+e.Name()+"/")
		}
		l := remoteRun(t, append([]string{"bisect", "--json"}, locals...)...)
		r := remoteRun(t, append([]string{"bisect", "--json"}, urls...)...)
		l.wantCode(t, 1)
		r.wantCode(t, 1)
		lj := jsonText(normalizeJSON(t, l.stdout, run))
		rj := jsonText(normalizeJSON(t, strings.ReplaceAll(r.stdout, "/\"", "\""), srv.URL+"/run"))
		if lj != rj {
			t.Errorf("bisect of checkpoint URLs differs from the local one:\nlocal:\n%.3000s\nremote:\n%.3000s", lj, rj)
		}
	})
	t.Run("missing", func(t *testing.T) {
		r := remoteRun(t, "scan", srv.URL+"/nothing/model.safetensors")
		r.wantCode(t, 2)
		if !strings.Contains(r.stderr, srv.URL+"/nothing/model.safetensors") {
			t.Errorf("the error does not name the URL:\n%s", r.stderr)
		}
	})
}

// headerBytes is what reading the headers of a safetensors file must fetch:
// the 8-byte length and the header.
func headerBytes(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var n [8]byte
	if _, err := f.ReadAt(n[:], 0); err != nil {
		t.Fatal(err)
	}
	return 8 + int64(binary.LittleEndian.Uint64(n[:]))
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// inspect of a remote checkpoint fetches its headers and the small JSON
// files beside them (read whole, as locally), not tensor data, and says how
// much it read.
func TestRemoteInspectTransfersHeaders(t *testing.T) {
	root := remoteFixtures(t)
	srv := serve(t, &fileServer{root: root})
	cases := []struct {
		name, url string
		want      int64 // headers and side files
	}{}
	big := filepath.Join(root, "big")
	cases = append(cases, struct {
		name, url string
		want      int64
	}{"single", srv.URL + "/big/", headerBytes(t, filepath.Join(big, "model.safetensors")) + fileSize(t, filepath.Join(big, "config.json"))})
	sh := filepath.Join(root, "sharded")
	want := fileSize(t, filepath.Join(sh, "config.json")) + fileSize(t, filepath.Join(sh, "model.safetensors.index.json"))
	for k := 1; k <= 3; k++ {
		want += headerBytes(t, filepath.Join(sh, synth.ShardName(k, 3)))
	}
	cases = append(cases, struct {
		name, url string
		want      int64
	}{"sharded", srv.URL + "/sharded/", want})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := remoteRun(t, "inspect", "--json", c.url)
			r.wantCode(t, 0)
			var rep struct{ Network *networkUse }
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Network == nil {
				t.Fatalf("no network use in the JSON (%v):\n%.1000s", err, r.stdout)
			}
			// The whole budget: 1% over the headers and side files. (A file
			// whose header is under 1 KiB would be read 1 KiB at least; none
			// is here.)
			if got := rep.Network.Bytes; got < c.want || float64(got) > 1.01*float64(c.want) {
				t.Errorf("inspect read %d bytes; the headers and side files are %d", got, c.want)
			}
			text := remoteRun(t, "inspect", "--summary", c.url)
			text.wantCode(t, 0)
			if !regexp.MustCompile(`read [0-9,]+ bytes over the network in [0-9]+ requests`).MatchString(text.stdout) {
				t.Errorf("inspect does not say what it read:\n%s", text.stdout)
			}
		})
	}
	local := remoteRun(t, "inspect", filepath.Join(root, "big"))
	if strings.Contains(local.stdout, "over the network") {
		t.Errorf("a local inspect speaks of the network:\n%s", local.stdout)
	}
}

// faultyServer is a fileServer whose first n range requests fail as fault
// says.
func faultyServer(t *testing.T, root string, n int64, fault func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, *atomic.Int64) {
	var count atomic.Int64
	fs := &fileServer{root: root}
	fs.fault = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Range") == "" || count.Add(1) > n {
			return false
		}
		fault(w, r)
		return true
	}
	return serve(t, fs), &count
}

// cutWriter passes through the first limit bytes of a body, then cuts the
// connection.
type cutWriter struct {
	http.ResponseWriter
	left int
}

func (c *cutWriter) Write(b []byte) (int, error) {
	if len(b) > c.left {
		c.ResponseWriter.Write(b[:c.left])
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	c.left -= len(b)
	return c.ResponseWriter.Write(b)
}

// TestRemoteFaultsAreRetried: most of its time is the retries' backoff, so it
// runs in parallel with the package's other parallel tests, its cases with each
// other (each has its own server; the fixtures are only read, and no case
// checks the process's network byte counters).
func TestRemoteFaultsAreRetried(t *testing.T) {
	t.Parallel()
	root := remoteFixtures(t)
	local := filepath.Join(root, "big", "model.safetensors")
	t.Run("503", func(t *testing.T) {
		t.Parallel()
		srv, count := faultyServer(t, root, 3, func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "busy", http.StatusServiceUnavailable)
		})
		sameAsLocal(t, "scan", local, srv.URL+"/big/model.safetensors", 0)
		if count.Load() <= 3 {
			t.Fatalf("only %d range requests reached the server", count.Load())
		}
	})
	t.Run("cut mid-body", func(t *testing.T) {
		t.Parallel()
		inner := &fileServer{root: root}
		var count atomic.Int64
		fs := &fileServer{root: root}
		fs.fault = func(w http.ResponseWriter, r *http.Request) bool {
			// Big range requests (the scan's parts) are cut after 100 KB, three times.
			if r.Header.Get("Range") == "" || !strings.Contains(r.Header.Get("Range"), "-") || count.Load() >= 3 {
				return false
			}
			var a, b int64
			fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &a, &b)
			if b-a < 1<<20 {
				return false
			}
			count.Add(1)
			inner.ServeHTTP(&cutWriter{ResponseWriter: w, left: 100_000}, r)
			return true
		}
		srv := serve(t, fs)
		sameAsLocal(t, "scan", local, srv.URL+"/big/model.safetensors", 0)
		if count.Load() != 3 {
			t.Fatalf("%d responses were cut, want 3 (did the scan stream big parts?)", count.Load())
		}
	})
	t.Run("503 for ever", func(t *testing.T) {
		t.Parallel()
		srv, _ := faultyServer(t, root, 1<<30, func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "down", http.StatusServiceUnavailable)
		})
		start := time.Now()
		r := remoteRun(t, "scan", srv.URL+"/big/model.safetensors")
		if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "503") || !strings.Contains(r.stdout+r.stderr, "attempts") {
			t.Errorf("exit %d; want a failure naming the 503 and the attempts:\n%s%s", r.code, r.stdout, r.stderr)
		}
		t.Logf("%s%s", r.stdout, r.stderr)
		if d := time.Since(start); d > time.Minute {
			t.Errorf("giving up took %v", d)
		}
	})
	t.Run("range ignored", func(t *testing.T) {
		t.Parallel()
		srv := serve(t, &fileServer{root: root, fault: func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodGet {
				r.Header.Del("Range")
			}
			return false
		}})
		r := remoteRun(t, "inspect", srv.URL+"/big/model.safetensors")
		t.Logf("%s%s", r.stdout, r.stderr)
		if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "Range") {
			t.Errorf("exit %d; want an error saying the server ignores Range:\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
}

// An object replaced while it is scanned is the finding a local file
// replaced mid-scan is: exit 1, a format error naming the file as changed.
func TestRemoteObjectChangedMidScan(t *testing.T) {
	root := remoteFixtures(t)
	path := filepath.Join(root, "big", "model.safetensors")
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	fs := &fileServer{root: root}
	fs.fault = func(w http.ResponseWriter, r *http.Request) bool {
		// After a few range requests of the scan, the object is rewritten
		// (same size, new bytes, new modification time: a new ETag).
		if fs.gets.Load() == 4 {
			once.Do(func() {
				changed := append([]byte(nil), orig...)
				for i := len(changed) - 1000; i < len(changed); i++ {
					changed[i] ^= 0x55
				}
				if err := os.WriteFile(path, changed, 0o644); err != nil {
					t.Error(err)
				}
				later := time.Now().Add(time.Hour)
				os.Chtimes(path, later, later)
			})
		}
		return false
	}
	srv := serve(t, fs)
	r := remoteRun(t, "scan", "--json", srv.URL+"/big/model.safetensors")
	r.wantCode(t, 1)
	var rep struct {
		Findings []struct{ Severity, Check, File, Message string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range rep.Findings {
		if f.Severity == "error" && f.Check == "format" && strings.Contains(f.Message, "changed") && strings.HasPrefix(f.File, srv.URL) {
			found = true
		}
	}
	t.Logf("%s", r.stdout)
	if !found {
		t.Errorf("no finding says the object changed:\n%s", r.stdout)
	}
	// The same file replaced locally between the header and the data: the
	// same kind of finding and exit status.
	if !strings.Contains(formats.ErrFileChanged.Error(), "changed") {
		t.Fatal("ErrFileChanged's text changed")
	}
}

// hubServer is a small stand-in for the Hugging Face Hub over root: the
// repository org/repo at main is root's tree. Resolve URLs of .safetensors
// files redirect to a CDN path (as LFS files do), the others are served
// directly; the tree API lists a directory. The CDN is another server, which
// must never get the token.
func hubServer(t *testing.T, root string) *httptest.Server {
	t.Helper()
	files := &fileServer{root: root}
	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Errorf("the CDN got the token")
		}
		r.URL.Path = strings.TrimPrefix(r.URL.Path, "/cdn")
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(cdn.Close)
	mux := http.NewServeMux()
	mux.HandleFunc("/org/repo/resolve/", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer hf_cmd_test" {
			w.Header().Set("X-Error-Code", "RepoNotFound")
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		rest := strings.TrimPrefix(r.URL.Path, "/org/repo/resolve/")
		rev, p, _ := strings.Cut(rest, "/")
		if rev != "main" && rev != "0123abcd" {
			w.Header().Set("X-Error-Code", "RevisionNotFound")
			http.NotFound(w, r)
			return
		}
		w.Header().Set("X-Repo-Commit", "0123abcd")
		st, err := os.Stat(filepath.Join(root, filepath.FromSlash(p)))
		if err != nil || st.IsDir() {
			w.Header().Set("X-Error-Code", "EntryNotFound")
			http.NotFound(w, r)
			return
		}
		if strings.HasSuffix(p, ".safetensors") {
			w.Header().Set("X-Linked-Size", fmt.Sprint(st.Size()))
			w.Header().Set("X-Linked-Etag", fmt.Sprintf(`"%x"`, st.ModTime().UnixNano()))
			http.Redirect(w, r, cdn.URL+"/cdn/"+p, http.StatusFound)
			return
		}
		r.URL.Path = "/" + p
		files.ServeHTTP(w, r)
	})
	mux.HandleFunc("/api/models/org/repo/tree/main/", func(w http.ResponseWriter, r *http.Request) {
		dir := strings.Trim(strings.TrimPrefix(r.URL.Path, "/api/models/org/repo/tree/main/"), "/")
		des, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(dir)))
		if err != nil {
			w.Header().Set("X-Error-Code", "EntryNotFound")
			http.NotFound(w, r)
			return
		}
		var out []map[string]any
		for _, d := range des {
			e := map[string]any{"path": dir + "/" + d.Name(), "type": "file", "oid": "x"}
			if d.IsDir() {
				e["type"] = "directory"
			} else if info, err := d.Info(); err == nil {
				e["size"] = info.Size()
			}
			out = append(out, e)
		}
		json.NewEncoder(w).Encode(out)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// hf:// URLs read a repository through its resolve URLs and the tree API:
// the directory is listed, so the checkpoint is found as locally.
func TestRemoteHubScanMatchesLocal(t *testing.T) {
	root := remoteFixtures(t)
	srv := hubServer(t, root)
	t.Setenv("HF_ENDPOINT", srv.URL)
	t.Setenv("HF_TOKEN", "hf_cmd_test")
	sameAsLocal(t, "scan", filepath.Join(root, "sharded"), "hf://org/repo/sharded", 0)
	sameAsLocal(t, "inspect", filepath.Join(root, "big"), "hf://org/repo@main/big", 0)

	t.Setenv("HF_TOKEN", "")
	r := remoteRun(t, "inspect", "hf://org/repo/big")
	r.wantCode(t, 2)
	if !strings.Contains(r.stderr, "HF_TOKEN") || !strings.Contains(r.stderr, "hf://org/repo/big") {
		t.Errorf("without a token: %s", r.stderr)
	}
}

// A scan of a small remote checkpoint fetches each byte once, whatever the
// order its workers read in: the same count on every run, at most the files'
// bytes (the weights and config.json) and 1% more.
func TestRemoteSmallScanTransferIsExact(t *testing.T) {
	dir := cliTiny(t, 0, "")
	srv := serve(t, &fileServer{root: filepath.Dir(dir)})
	url := srv.URL + "/" + filepath.Base(dir) + "/"
	files := fileSize(t, filepath.Join(dir, "model.safetensors")) + fileSize(t, filepath.Join(dir, "config.json"))
	said := regexp.MustCompile(`read ([0-9,]+) bytes over the network`)
	var first string
	for i := range 12 {
		r := remoteRun(t, "scan", "--workers", "4", url)
		r.wantCode(t, 0)
		m := said.FindStringSubmatch(r.stdout)
		if m == nil {
			t.Fatalf("the scan does not say what it read:\n%s", r.stdout)
		}
		got, _ := strconv.ParseInt(strings.ReplaceAll(m[1], ",", ""), 10, 64)
		if i == 0 {
			first = m[1]
			if got < files || float64(got) > 1.01*float64(files) {
				t.Errorf("the scan read %d bytes of %d bytes of files", got, files)
			}
		} else if m[1] != first {
			t.Errorf("run %d read %s bytes, run 1 %s", i+1, m[1], first)
		}
	}
}
