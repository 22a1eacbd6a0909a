package remote

import (
	"bytes"
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

// fakeS3 answers the few S3 requests the backend sends, path-style:
// HeadObject, GetObject (Range, If-Match) and ListObjectsV2 (Delimiter "/",
// pages of two entries). It checks the requests' shape, not their
// signatures: the S3-compatible server tests check the rest.
type fakeS3 struct {
	mu      sync.Mutex
	objects map[string][]byte // "bucket/key" → content
	etags   map[string]string
	paths   []string // request paths seen
	ranges  []string
	ifMatch []string
	authz   []string
}

func newFakeS3(t *testing.T) (*fakeS3, *httptest.Server) {
	f := &fakeS3{objects: map[string][]byte{}, etags: map[string]string{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ENDPOINT_URL", srv.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return f, srv
}

func (f *fakeS3) put(key string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objects[key] = data
	f.etags[key] = fmt.Sprintf(`"%x"`, len(f.etags)+len(data)*7919)
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.paths = append(f.paths, r.Method+" "+r.URL.Path)
	f.authz = append(f.authz, r.Header.Get("Authorization"))
	if r.Method == http.MethodGet && r.Header.Get("Range") != "" {
		f.ranges = append(f.ranges, r.Header.Get("Range"))
		f.ifMatch = append(f.ifMatch, r.Header.Get("If-Match"))
	}
	f.mu.Unlock()
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if key == "" && r.URL.Query().Get("list-type") == "2" {
		f.list(w, r, bucket)
		return
	}
	if strings.HasPrefix(key, "secret/") {
		w.WriteHeader(http.StatusForbidden)
		if r.Method != http.MethodHead {
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`)
		}
		return
	}
	f.mu.Lock()
	data, ok := f.objects[bucket+"/"+key]
	etag := f.etags[bucket+"/"+key]
	f.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		if r.Method != http.MethodHead {
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>`)
		}
		return
	}
	w.Header().Set("ETag", etag)
	http.ServeContent(w, r, "", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), bytes.NewReader(data))
}

func (f *fakeS3) list(w http.ResponseWriter, r *http.Request, bucket string) {
	q := r.URL.Query()
	prefix, delim := q.Get("prefix"), q.Get("delimiter")
	if delim != "/" {
		http.Error(w, "want delimiter /", http.StatusBadRequest)
		return
	}
	type item struct {
		xml, name string
	}
	var items []item
	seen := map[string]bool{}
	f.mu.Lock()
	for k, data := range f.objects {
		b, key, _ := strings.Cut(k, "/")
		rest, ok := strings.CutPrefix(key, prefix)
		if b != bucket || !ok {
			continue
		}
		if d, _, sub := strings.Cut(rest, "/"); sub {
			if !seen[d] {
				seen[d] = true
				items = append(items, item{"<CommonPrefixes><Prefix>" + prefix + d + "/</Prefix></CommonPrefixes>", d})
			}
			continue
		}
		items = append(items, item{fmt.Sprintf("<Contents><Key>%s</Key><LastModified>2026-01-02T03:04:05.000Z</LastModified><ETag>%s</ETag><Size>%d</Size></Contents>",
			key, strings.ReplaceAll(f.etags[k], `"`, "&quot;"), len(data)), rest})
	}
	f.mu.Unlock()
	sort.Slice(items, func(i, j int) bool { return items[i].name < items[j].name })
	page := 0
	fmt.Sscan(q.Get("continuation-token"), &page)
	end := min(2*page+2, len(items))
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>%s</Name><Prefix>%s</Prefix><Delimiter>/</Delimiter><MaxKeys>1000</MaxKeys><KeyCount>%d</KeyCount>`, bucket, prefix, end-min(2*page, len(items)))
	if end < len(items) {
		fmt.Fprintf(&b, "<IsTruncated>true</IsTruncated><NextContinuationToken>%d</NextContinuationToken>", page+1)
	} else {
		b.WriteString("<IsTruncated>false</IsTruncated>")
	}
	for _, it := range items[min(2*page, len(items)):end] {
		b.WriteString(it.xml)
	}
	b.WriteString("</ListBucketResult>")
	w.Header().Set("Content-Type", "application/xml")
	fmt.Fprint(w, b.String())
}

func s3Store(t *testing.T) *store {
	t.Helper()
	return newStore("s3", newS3Backend, testOptions())
}

func TestS3ReadsAndLists(t *testing.T) {
	f, _ := newFakeS3(t)
	content := bytes.Repeat([]byte("s3 bytes "), 100000)
	f.put("bkt/run/checkpoint-10/model.safetensors", content)
	f.put("bkt/run/checkpoint-10/config.json", []byte("{}"))
	f.put("bkt/run/checkpoint-10/extra/x", []byte("x"))
	f.put("bkt/run/checkpoint-2/model.safetensors", []byte("y"))
	f.put("bkt/run/trainer_log.txt", []byte("z"))
	st := s3Store(t)

	src, err := st.Open("s3://bkt/run/checkpoint-10/model.safetensors", formats.Pread)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if src.Size() != int64(len(content)) {
		t.Fatalf("size %d", src.Size())
	}
	buf := make([]byte, 70000)
	if _, err := src.ReadAt(buf, 5); err != nil || !bytes.Equal(buf, content[5:5+len(buf)]) {
		t.Fatalf("ReadAt: %v", err)
	}
	f.mu.Lock()
	for _, p := range f.paths {
		if !strings.Contains(p, " /bkt/") {
			t.Errorf("request %q is not path-style", p)
		}
	}
	if len(f.ranges) == 0 || f.ranges[0] != "bytes=5-70004" {
		t.Errorf("ranges %q", f.ranges)
	}
	for _, m := range f.ifMatch {
		if m != f.etags["bkt/run/checkpoint-10/model.safetensors"] {
			t.Errorf("If-Match %q", m)
		}
	}
	for _, a := range f.authz {
		if !strings.HasPrefix(a, "AWS4-HMAC-SHA256 Credential=test/") {
			t.Errorf("Authorization %q: not signed with the environment's key", a)
		}
	}
	f.mu.Unlock()

	entries, err := st.ReadDir("s3://bkt/run")
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
	if got := strings.Join(names, " "); got != "checkpoint-10/ checkpoint-2/ trainer_log.txt" {
		t.Errorf("ReadDir: %s", got)
	}
	entries, err = st.ReadDir("s3://bkt/run/checkpoint-10/")
	if err != nil || len(entries) != 3 {
		t.Fatalf("ReadDir of a checkpoint: %v, %v", entries, err)
	}
	if info, err := st.Stat("s3://bkt/run/checkpoint-10"); err != nil || !info.IsDir() {
		t.Errorf("Stat of a prefix: %v, %v", info, err)
	}
	info, err := st.Stat("s3://bkt/run/checkpoint-10/config.json")
	if err != nil || info.IsDir() || info.Size() != 2 {
		t.Errorf("Stat of an object: %v, %v", info, err)
	} else if v := info.Sys().(*formats.ObjectVersion); v.ETag == "" || v.LastModified.IsZero() {
		t.Errorf("version %+v", v)
	}
	if _, err := st.Stat("s3://bkt/run/nothing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of nothing: %v", err)
	}

	// The object is replaced: the next read is a change, not new bytes.
	f.put("bkt/run/checkpoint-10/model.safetensors", bytes.Repeat([]byte("new bytes"), 100000))
	_, err = src.ReadAt(make([]byte, 1000), 600000)
	if !errors.Is(err, formats.ErrFileChanged) {
		t.Errorf("read after a replacement: %v, want ErrFileChanged", err)
	}
}

func TestS3AccessDenied(t *testing.T) {
	f, _ := newFakeS3(t)
	f.put("bkt/secret/model.safetensors", []byte("x"))
	st := s3Store(t)
	_, err := st.Stat("s3://bkt/secret/model.safetensors")
	if !errors.Is(err, ErrAccessDenied) || !strings.Contains(err.Error(), "check AWS credentials") || !strings.Contains(err.Error(), "s3://bkt/secret/model.safetensors") {
		t.Errorf("%v: want access denied naming the URL and the credentials", err)
	}
	if _, err := st.Stat("s3://"); !errors.Is(err, ErrBadURL) && !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("s3:// without a bucket: %v", err)
	}
}
