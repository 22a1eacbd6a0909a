package remote

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ckpt-tool/ckpt/formats"
)

func TestParseHF(t *testing.T) {
	for _, c := range []struct {
		in   string
		want hfRef
		bad  bool
	}{
		{in: "hf://org/repo/model.safetensors", want: hfRef{"models", "org/repo", "main", "model.safetensors"}},
		{in: "hf://org/repo@v1.0/sub/dir/", want: hfRef{"models", "org/repo", "v1.0", "sub/dir"}},
		{in: "hf://org/repo", want: hfRef{"models", "org/repo", "main", ""}},
		{in: "hf://org/repo@refs%2Fpr%2F3/a.bin", want: hfRef{"models", "org/repo", "refs/pr/3", "a.bin"}},
		{in: "hf://datasets/org/data/x.safetensors", want: hfRef{"datasets", "org/data", "main", "x.safetensors"}},
		{in: "hf://org", bad: true},
		{in: "hf://org/", bad: true},
		{in: "hf://org/repo@/x", bad: true},
		{in: "hf://org/repo/../x", bad: true},
		{in: "hf://../repo/x", bad: true},
		{in: "s3://org/repo", bad: true},
	} {
		got, err := parseHF(c.in)
		if c.bad {
			if !errors.Is(err, ErrBadURL) {
				t.Errorf("parseHF(%q) = %+v, %v; want ErrBadURL", c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("parseHF(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

// fakeHub is a Hub and its CDN: resolve URLs of LFS files redirect to the
// CDN, which serves their bytes with Range; the tree API lists, a page of
// two entries at a time.
type fakeHub struct {
	hub, cdn *httptest.Server
	files    map[string][]byte // path in the repository → content (all LFS)
	small    map[string][]byte // plain git files, served by the Hub itself
	mu       sync.Mutex
	auth     []string // Authorization headers seen by the Hub
	cdnAuth  []string // and by the CDN
	private  bool     // the repository wants a token
}

const hubToken = "hf_test_token"

func newFakeHub(t *testing.T) *fakeHub {
	h := &fakeHub{files: map[string][]byte{}, small: map[string][]byte{}}
	h.cdn = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.cdnAuth = append(h.cdnAuth, r.Header.Get("Authorization"))
		h.mu.Unlock()
		data, ok := h.files[strings.TrimPrefix(r.URL.Path, "/blob/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", `"cdn-etag-differs"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	}))
	h.hub = httptest.NewServer(http.HandlerFunc(h.serveHub))
	t.Cleanup(h.cdn.Close)
	t.Cleanup(h.hub.Close)
	return h
}

func (h *fakeHub) serveHub(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.auth = append(h.auth, r.Header.Get("Authorization"))
	h.mu.Unlock()
	if h.private && r.Header.Get("Authorization") != "Bearer "+hubToken {
		w.Header().Set("X-Error-Code", "RepoNotFound")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, "/api/models/org/repo/tree/main"); ok {
		h.serveTree(w, r, strings.Trim(rest, "/"))
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/org/repo/resolve/")
	if !ok {
		w.Header().Set("X-Error-Code", "RepoNotFound")
		http.NotFound(w, r)
		return
	}
	rev, p, _ := strings.Cut(rest, "/")
	if rev != "main" && rev != "c0ffee" {
		w.Header().Set("X-Error-Code", "RevisionNotFound")
		http.NotFound(w, r)
		return
	}
	w.Header().Set("X-Repo-Commit", "c0ffee")
	if data, ok := h.small[p]; ok {
		w.Header().Set("ETag", `"gitblob"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
		return
	}
	data, ok := h.files[p]
	if !ok {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		http.NotFound(w, r)
		return
	}
	w.Header().Set("X-Linked-Size", fmt.Sprint(len(data)))
	w.Header().Set("X-Linked-Etag", `"sha256-of-`+p+`"`)
	w.Header().Set("ETag", `W/"not-this-one"`)
	w.Header().Set("Location", h.cdn.URL+"/blob/"+p)
	w.WriteHeader(http.StatusFound)
}

func (h *fakeHub) serveTree(w http.ResponseWriter, r *http.Request, dir string) {
	type entry struct {
		Type string `json:"type"`
		Oid  string `json:"oid"`
		Size int64  `json:"size"`
		Path string `json:"path"`
		LFS  *struct {
			Oid  string `json:"oid"`
			Size int64  `json:"size"`
		} `json:"lfs,omitempty"`
	}
	var all []entry
	seenDir := map[string]bool{}
	for _, p := range sortedKeys(h.files) {
		rest, ok := p, dir == ""
		if !ok {
			rest, ok = strings.CutPrefix(p, dir+"/")
		}
		if !ok {
			continue
		}
		if d, _, sub := strings.Cut(rest, "/"); sub {
			if !seenDir[d] {
				seenDir[d] = true
				all = append(all, entry{Type: "directory", Path: strings.TrimPrefix(dir+"/"+d, "/")})
			}
			continue
		}
		e := entry{Type: "file", Oid: "blob", Size: 134, Path: p}
		e.LFS = &struct {
			Oid  string `json:"oid"`
			Size int64  `json:"size"`
		}{"sha", int64(len(h.files[p]))}
		all = append(all, e)
	}
	page := 0
	fmt.Sscan(r.URL.Query().Get("cursor"), &page)
	end := min(2*page+2, len(all))
	if end < len(all) {
		w.Header().Set("Link", fmt.Sprintf(`<%s%s?cursor=%d>; rel="next"`, h.hub.URL, r.URL.Path, page+1))
	}
	json.NewEncoder(w).Encode(all[min(2*page, len(all)):end])
}

func sortedKeys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func hubStore(t *testing.T, h *fakeHub, token string) *store {
	t.Setenv("HF_ENDPOINT", h.hub.URL)
	t.Setenv("HF_TOKEN", token)
	return newStore("hf", func() (backend, error) { return newHFBackend(), nil }, testOptions())
}

func TestHubReadsThroughTheCDN(t *testing.T) {
	h := newFakeHub(t)
	content := bytes.Repeat([]byte("0123456789abcdef"), 40000)
	h.files["ckpt/model.safetensors"] = content
	h.files["ckpt/sub/x.bin"] = []byte("x")
	h.files["ckpt/a.json"] = []byte("{}")
	h.files["ckpt/b.json"] = []byte("{}")
	h.small["ckpt/config.json"] = []byte(`{"a":1}`)
	st := hubStore(t, h, hubToken)

	info, err := st.Stat("hf://org/repo/ckpt/model.safetensors")
	if err != nil || info.IsDir() || info.Size() != int64(len(content)) {
		t.Fatalf("Stat = %v, %v", info, err)
	}
	if v := info.Sys().(*formats.ObjectVersion); v.ETag != `"sha256-of-ckpt/model.safetensors"` {
		t.Errorf("version %+v: want X-Linked-Etag", v)
	}
	src, err := st.Open("hf://org/repo/ckpt/model.safetensors", formats.Pread)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	buf := make([]byte, 300000)
	if _, err := src.ReadAt(buf, 1234); err != nil || !bytes.Equal(buf, content[1234:1234+len(buf)]) {
		t.Fatalf("ReadAt through the CDN: %v", err)
	}
	small, err := st.Open("hf://org/repo/ckpt/config.json", formats.Pread)
	if err != nil || small.Size() != 7 {
		t.Fatalf("a plain file: %v", err)
	}
	b := make([]byte, 7)
	if _, err := small.ReadAt(b, 0); err != nil || string(b) != `{"a":1}` {
		t.Fatalf("a plain file read %q, %v", b, err)
	}
	for _, a := range h.auth {
		if a != "Bearer "+hubToken {
			t.Errorf("the Hub got Authorization %q", a)
		}
	}
	for _, a := range h.cdnAuth {
		if a != "" {
			t.Errorf("the CDN got Authorization %q: the token must stay with the Hub", a)
		}
	}
	if len(h.cdnAuth) == 0 {
		t.Error("nothing was read from the CDN")
	}

	entries, err := st.ReadDir("hf://org/repo/ckpt/")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() {
			n += "/"
		}
		names = append(names, n)
	}
	if got := strings.Join(names, " "); got != "a.json b.json model.safetensors sub/" {
		t.Errorf("ReadDir: %s", got)
	}
	if info, err := st.Stat("hf://org/repo/ckpt"); err != nil || !info.IsDir() {
		t.Errorf("Stat of a directory: %v, %v", info, err)
	}
	if _, err := st.Stat("hf://org/repo/ckpt/missing.bin"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a missing file: %v", err)
	}
	if _, err := st.Stat("hf://org/repo@nope/ckpt/model.safetensors"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat at a missing revision: %v", err)
	}
}

func TestHubAccessDenied(t *testing.T) {
	h := newFakeHub(t)
	h.private = true
	h.files["m.safetensors"] = []byte("x")
	st := hubStore(t, h, "")
	_, err := st.Stat("hf://org/repo/m.safetensors")
	if !errors.Is(err, ErrAccessDenied) || !strings.Contains(err.Error(), "HF_TOKEN") || !strings.Contains(err.Error(), "hf://org/repo/m.safetensors") {
		t.Errorf("without a token: %v; want access denied naming the URL and HF_TOKEN", err)
	}
	st = hubStore(t, h, hubToken)
	if _, err := st.Stat("hf://org/repo/m.safetensors"); err != nil {
		t.Errorf("with the token: %v", err)
	}
}
