package remote

import (
	"bytes"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-tool/ckpt/formats"
)

func httpStore() *store {
	return newStore("http", func() (backend, error) { return newHTTPBackend(), nil }, testOptions())
}

// A URL signed for GET only refuses HEAD: it is described by a GET of its
// first byte.
func TestHTTPObjectThatRefusesHead(t *testing.T) {
	content := bytes.Repeat([]byte("abc"), 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.Header().Set("ETag", `"e1"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(content))
	}))
	defer srv.Close()
	src, err := httpStore().Open(srv.URL+"/x.safetensors?sig=abc", formats.Pread)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	buf := make([]byte, 100)
	if src.Size() != int64(len(content)) {
		t.Fatalf("size %d", src.Size())
	}
	if _, err := src.ReadAt(buf, 2000); err != nil || !bytes.Equal(buf, content[2000:2100]) {
		t.Fatalf("ReadAt: %v", err)
	}
}

func TestHTTPErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/private"):
			w.WriteHeader(http.StatusUnauthorized)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	st := httpStore()
	if _, err := st.Stat(srv.URL + "/missing.bin"); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), srv.URL+"/missing.bin") {
		t.Errorf("missing: %v", err)
	}
	if _, err := st.Stat(srv.URL + "/private/x"); !errors.Is(err, ErrAccessDenied) {
		t.Errorf("401: %v", err)
	}
	if _, err := st.ReadDir(srv.URL + "/dir/"); !errors.Is(err, formats.ErrNotListable) {
		t.Errorf("listing: %v, want ErrNotListable", err)
	}
	if info, err := st.Stat(srv.URL + "/dir/"); err != nil || !info.IsDir() {
		t.Errorf("a URL ending in / is a directory: %v, %v", info, err)
	}
	if _, err := st.Stat("http://"); !errors.Is(err, ErrBadURL) {
		t.Errorf("http:// without a host: %v", err)
	}
}
