package s3test

// These tests pin down what the test server does with the requests the s3://
// reader sends (docs/remote-testing.md): if one fails after the server's
// version changes, the reader's tests would be testing something else.

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// randomBytes is n bytes of a seeded stream (different for each seed).
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// httpStatus is the HTTP status code of a response (out's metadata) or of an
// error's response; 0 when there was no response.
func httpStatus(meta middleware.Metadata, err error) int {
	if err != nil {
		var re *awshttp.ResponseError
		if errors.As(err, &re) {
			return re.HTTPStatusCode()
		}
		return 0
	}
	if raw, ok := awsmiddleware.GetRawResponse(meta).(*smithyhttp.Response); ok {
		return raw.StatusCode
	}
	return 0
}

func md5ETag(b []byte) string {
	sum := md5.Sum(b)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

func TestPutThenHeadGivesSizeETagAndLastModified(t *testing.T) {
	t.Parallel()
	s := S3(t)
	data := randomBytes(100_000, 1)
	before := time.Now().Add(-2 * time.Second)
	s.Put(t, "dir/model.safetensors", data)
	out, err := s.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String("dir/model.safetensors")})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToInt64(out.ContentLength); got != int64(len(data)) {
		t.Errorf("HEAD Content-Length %d, want %d", got, len(data))
	}
	if got, want := aws.ToString(out.ETag), md5ETag(data); got != want {
		t.Errorf("HEAD ETag %s, want the quoted MD5 %s (as AWS gives for a single PUT)", got, want)
	}
	if out.LastModified == nil || out.LastModified.Before(before) || out.LastModified.After(time.Now().Add(2*time.Second)) {
		t.Errorf("HEAD Last-Modified %v, want the time of the PUT (%v)", out.LastModified, before)
	}
}

func TestHeadOfMissingObjectIs404(t *testing.T) {
	t.Parallel()
	s := S3(t)
	c := s.Client()
	out, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String("no/such/key")})
	if code := httpStatus(metadataOf(out), err); code != http.StatusNotFound {
		t.Errorf("HEAD of a missing key: status %d (%v), want 404", code, err)
	}
	_, err = c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String("no/such/key")})
	if code := httpStatus(middleware.Metadata{}, err); code != http.StatusNotFound {
		t.Errorf("GET of a missing key: status %d (%v), want 404", code, err)
	}
}

func metadataOf(out *s3.HeadObjectOutput) middleware.Metadata {
	if out == nil {
		return middleware.Metadata{}
	}
	return out.ResultMetadata
}

func TestRangeGetReturns206AndExactBytes(t *testing.T) {
	t.Parallel()
	s := S3(t)
	// Larger than the filer's 4 MiB chunks, so ranges cross chunk boundaries.
	data := randomBytes(9<<20+123, 2)
	s.Put(t, "ckpt/model.safetensors", data)
	c := s.Client()
	n := int64(len(data))
	for _, r := range []struct{ first, last int64 }{
		{0, 7},                   // a safetensors header length
		{8, 4095},                // the header
		{4<<20 - 10, 4<<20 + 10}, // across a chunk boundary
		{n - 1, n - 1},           // the last byte
		{n - 100, n + 1000},      // past the end: cut at the end
	} {
		out, err := c.GetObject(context.Background(), &s3.GetObjectInput{
			Bucket: aws.String(s.Bucket), Key: aws.String("ckpt/model.safetensors"),
			Range: aws.String(fmt.Sprintf("bytes=%d-%d", r.first, r.last)),
		})
		if err != nil {
			t.Fatalf("GET bytes=%d-%d: %v", r.first, r.last, err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		last := min(r.last, n-1)
		if code := httpStatus(out.ResultMetadata, nil); code != http.StatusPartialContent {
			t.Errorf("GET bytes=%d-%d: status %d, want 206", r.first, r.last, code)
		}
		if !bytes.Equal(got, data[r.first:last+1]) {
			t.Errorf("GET bytes=%d-%d: %d bytes that are not bytes %d..%d of the object", r.first, r.last, len(got), r.first, last)
		}
		if want := fmt.Sprintf("bytes %d-%d/%d", r.first, last, n); aws.ToString(out.ContentRange) != want {
			t.Errorf("GET bytes=%d-%d: Content-Range %q, want %q", r.first, r.last, aws.ToString(out.ContentRange), want)
		}
		if aws.ToInt64(out.ContentLength) != last+1-r.first {
			t.Errorf("GET bytes=%d-%d: Content-Length %d, want %d", r.first, r.last, aws.ToInt64(out.ContentLength), last+1-r.first)
		}
	}
	_, err := c.GetObject(context.Background(), &s3.GetObjectInput{
		Bucket: aws.String(s.Bucket), Key: aws.String("ckpt/model.safetensors"),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", n, n+10)),
	})
	if code := httpStatus(middleware.Metadata{}, err); code != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("GET of a range starting at the end: status %d (%v), want 416", code, err)
	}
}

func TestOverwriteChangesETagAndIfMatchOfStaleETagIs412(t *testing.T) {
	t.Parallel()
	s := S3(t)
	c := s.Client()
	ctx := context.Background()
	key := aws.String("ckpt/model.safetensors")
	head := func() *s3.HeadObjectOutput {
		t.Helper()
		out, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.Bucket), Key: key})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	s.Put(t, *key, randomBytes(10_000, 3))
	old := head()
	// The same size, other bytes: only the ETag can tell the versions apart.
	data := randomBytes(10_000, 4)
	s.Put(t, *key, data)
	cur := head()
	if aws.ToString(old.ETag) == aws.ToString(cur.ETag) {
		t.Fatalf("overwriting the object kept its ETag %s", aws.ToString(cur.ETag))
	}
	if aws.ToString(cur.ETag) != md5ETag(data) {
		t.Errorf("ETag after the overwrite %s, want %s", aws.ToString(cur.ETag), md5ETag(data))
	}
	if cur.LastModified.Before(*old.LastModified) {
		t.Errorf("Last-Modified went back from %v to %v", old.LastModified, cur.LastModified)
	}

	_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: key, Range: aws.String("bytes=0-99"), IfMatch: old.ETag})
	if code := httpStatus(middleware.Metadata{}, err); code != http.StatusPreconditionFailed {
		t.Errorf("ranged GET with If-Match of the stale ETag: status %d (%v), want 412", code, err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: key, Range: aws.String("bytes=0-99"), IfMatch: cur.ETag})
	if err != nil {
		t.Fatalf("ranged GET with If-Match of the current ETag: %v", err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if code := httpStatus(out.ResultMetadata, nil); code != http.StatusPartialContent || !bytes.Equal(got, data[:100]) {
		t.Errorf("ranged GET with If-Match of the current ETag: status %d and %d bytes, want 206 and the first 100", code, len(got))
	}
	if aws.ToString(out.ETag) != aws.ToString(cur.ETag) {
		t.Errorf("ranged GET's ETag %s, HEAD's %s", aws.ToString(out.ETag), aws.ToString(cur.ETag))
	}
}

func TestListObjectsV2WithDelimiterPages(t *testing.T) {
	t.Parallel()
	s := S3(t)
	var wantPrefixes []string
	for i := range 23 {
		key := fmt.Sprintf("run/checkpoint-%d/model.safetensors", (i+1)*100)
		s.Put(t, key, []byte(key))
		wantPrefixes = append(wantPrefixes, fmt.Sprintf("run/checkpoint-%d/", (i+1)*100))
	}
	wantFiles := []string{"run/trainer_state.json", "run/zz.log"}
	for _, k := range wantFiles {
		s.Put(t, k, []byte("{}"))
	}
	s.Put(t, "other/x", []byte("x")) // outside the prefix
	slices.Sort(wantPrefixes)        // lexical: checkpoint-1000 before checkpoint-200

	c := s.Client()
	var gotPrefixes, gotFiles []string
	var token *string
	pages := 0
	for {
		out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{
			Bucket: aws.String(s.Bucket), Prefix: aws.String("run/"), Delimiter: aws.String("/"),
			MaxKeys: aws.Int32(10), ContinuationToken: token,
		})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if n := len(out.CommonPrefixes) + len(out.Contents); n > 10 {
			t.Errorf("page %d: %d keys and prefixes, more than MaxKeys 10", pages, n)
		}
		for _, p := range out.CommonPrefixes {
			gotPrefixes = append(gotPrefixes, aws.ToString(p.Prefix))
		}
		for _, o := range out.Contents {
			gotFiles = append(gotFiles, aws.ToString(o.Key))
			if aws.ToInt64(o.Size) != 2 || aws.ToString(o.ETag) != md5ETag([]byte("{}")) {
				t.Errorf("listed %s: size %d, ETag %s; want 2 and %s", aws.ToString(o.Key), aws.ToInt64(o.Size), aws.ToString(o.ETag), md5ETag([]byte("{}")))
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		if out.NextContinuationToken == nil || pages > 10 {
			t.Fatalf("page %d is truncated but gives no continuation token (or paging does not end)", pages)
		}
		token = out.NextContinuationToken
	}
	if !slices.Equal(gotPrefixes, wantPrefixes) {
		t.Errorf("common prefixes:\n%q\nwant\n%q", gotPrefixes, wantPrefixes)
	}
	if !slices.Equal(gotFiles, wantFiles) {
		t.Errorf("objects %q, want %q", gotFiles, wantFiles)
	}
	if pages != 3 {
		t.Errorf("%d pages of at most 10 for 25 entries, want 3", pages)
	}
}

func TestWrongCredentialsAre403(t *testing.T) {
	t.Parallel()
	s := S3(t)
	s.Put(t, "k", []byte("v"))
	for _, tc := range []struct{ name, access, secret string }{
		{"wrong secret", s.AccessKey, s.SecretKey + "x"},
		{"unknown access key", "not-" + s.AccessKey, s.SecretKey},
	} {
		bad := Server{Endpoint: s.Endpoint, Region: s.Region, AccessKey: tc.access, SecretKey: tc.secret}
		c := bad.Client()
		_, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String("k")})
		if code := httpStatus(middleware.Metadata{}, err); code != http.StatusForbidden {
			t.Errorf("%s: HEAD status %d (%v), want 403", tc.name, code, err)
		}
		_, err = c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String("k")})
		if code := httpStatus(middleware.Metadata{}, err); code != http.StatusForbidden {
			t.Errorf("%s: GET status %d (%v), want 403", tc.name, code, err)
		}
		_, err = c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(s.Bucket)})
		if code := httpStatus(middleware.Metadata{}, err); code != http.StatusForbidden {
			t.Errorf("%s: LIST status %d (%v), want 403", tc.name, code, err)
		}
	}
	// Unsigned: an anonymous GET.
	resp, err := http.Get(s.Endpoint + "/" + s.Bucket + "/k")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("anonymous GET: status %d, want 403", resp.StatusCode)
	}
}

func TestUploadStoresTheTree(t *testing.T) {
	t.Parallel()
	const partSize = 5 << 20 // S3's smallest part
	dir := t.TempDir()
	files := map[string][]byte{
		"config.json":                      []byte(`{"model_type":"qwen2"}`),
		"checkpoint-1/model.safetensors":   randomBytes(12<<20+7, 5), // 3 parts
		"checkpoint-1/trainer_state.json":  []byte("{}"),
		"checkpoint-2/sub/empty.bin":       {},
		"checkpoint-2/model.safetensors":   randomBytes(5<<20, 6), // exactly one part
		"checkpoint-2/optimizer.pt.broken": randomBytes(1000, 7),
	}
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := S3(t)
	if got, want := s.upload(t, dir, "runs/a", partSize), "s3://"+s.Bucket+"/runs/a"; got != want {
		t.Errorf("Upload returned %s, want %s", got, want)
	}
	c := s.Client()
	var keys []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(s.Bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	var want []string
	for name := range files {
		want = append(want, "runs/a/"+name)
	}
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("keys %q, want %q", keys, want)
	}
	for name, data := range files {
		out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String("runs/a/" + name)})
		if err != nil {
			t.Fatalf("GET %s: %v", name, err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("GET %s: %d bytes (%v), not the %d uploaded", name, len(got), err, len(data))
		}
		etag := aws.ToString(out.ETag)
		multipart := len(data) >= partSize
		if multipart != strings.Contains(etag, "-") {
			t.Errorf("%s (%d bytes, multipart %v): ETag %s", name, len(data), multipart, etag)
		}
		if !multipart && etag != md5ETag(data) {
			t.Errorf("%s: ETag %s, want %s", name, etag, md5ETag(data))
		}
	}
}

func TestBucketNames(t *testing.T) {
	for _, tc := range []struct {
		test string
		n    int64
	}{
		{"TestX", 1},
		{"TestRange/bytes=0-7_(header)", 2},
		{strings.Repeat("VeryLongSubtestName/", 10), 12345},
		{"Ünïcode—ß", 3},
	} {
		name := bucketName(tc.test, tc.n)
		if len(name) < 3 || len(name) > 63 || strings.HasSuffix(name, "-") || strings.Contains(name, "--") {
			t.Errorf("bucketName(%q) = %q: not a valid bucket name", tc.test, name)
		}
		for _, r := range name {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				t.Errorf("bucketName(%q) = %q: %q is not allowed", tc.test, name, r)
			}
		}
		if !strings.Contains(name, fmt.Sprintf("-%d-", tc.n)) && !strings.HasSuffix(name, fmt.Sprintf("-%d", tc.n)) {
			t.Errorf("bucketName(%q, %d) = %q does not carry the counter", tc.test, tc.n, name)
		}
	}
}

func TestListObjectsV2PagesHoldAtMost1000Keys(t *testing.T) {
	t.Parallel()
	s := S3(t)
	c := s.Client()
	const n = 1001
	keys := make(chan int)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			var err error
			for i := range keys {
				if err == nil {
					_, err = c.PutObject(context.Background(), &s3.PutObjectInput{
						Bucket: aws.String(s.Bucket), Key: aws.String(fmt.Sprintf("many/%05d", i)), Body: strings.NewReader("x"),
					})
				}
			}
			errs <- err
		}()
	}
	for i := range n {
		keys <- i
	}
	close(keys)
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, maxKeys := range []*int32{nil, aws.Int32(5000)} {
		out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(s.Bucket), Prefix: aws.String("many/"), MaxKeys: maxKeys})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Contents) != 1000 || !aws.ToBool(out.IsTruncated) || out.NextContinuationToken == nil {
			t.Errorf("MaxKeys %v: a page of %d keys, truncated %v; want 1000, truncated, with a continuation token",
				aws.ToInt32(maxKeys), len(out.Contents), aws.ToBool(out.IsTruncated))
			continue
		}
		rest, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(s.Bucket), Prefix: aws.String("many/"), ContinuationToken: out.NextContinuationToken})
		if err != nil {
			t.Fatal(err)
		}
		if len(rest.Contents) != 1 || aws.ToString(rest.Contents[0].Key) != fmt.Sprintf("many/%05d", n-1) || aws.ToBool(rest.IsTruncated) {
			t.Errorf("the second page holds %d keys (truncated %v), want only many/%05d", len(rest.Contents), aws.ToBool(rest.IsTruncated), n-1)
		}
	}
}
