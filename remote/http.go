package remote

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ckpt-tool/ckpt/formats"
)

// httpBackend reads objects from any HTTP(S) server that honours Range
// requests: HEAD describes an object (Content-Length, ETag, Last-Modified),
// GET with Range and If-Match reads a version's bytes. It cannot list.
type httpBackend struct {
	client *http.Client
	// header adds headers to every request (the Hub's Authorization).
	header func(*http.Request)
	// deniedHint is said after a 401/403.
	deniedHint string
}

func newHTTPBackend() *httpBackend {
	return &httpBackend{client: newHTTPClient(), deniedHint: "the server wants credentials ckpt cannot give it; use a URL that needs none"}
}

// newHTTPClient is the client of the HTTP and Hub backends: a transport with
// connect and response-header timeouts (a body that stalls is the idle
// timeout's business) and enough idle connections for parallel parts.
func newHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	t.ResponseHeaderTimeout = 60 * time.Second
	t.DisableCompression = true
	return &http.Client{Transport: t}
}

func (h *httpBackend) newRequest(ctx context.Context, method, url string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, &Error{URL: url, Op: method, Kind: ErrBadURL, Err: err, Detail: "not a valid URL: " + err.Error()}
	}
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("User-Agent", "ckpt")
	if h.header != nil {
		h.header(req)
	}
	return req, nil
}

func (h *httpBackend) check(u string) error {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" || p.Scheme != "http" && p.Scheme != "https" {
		return &Error{URL: u, Kind: ErrBadURL, Detail: "not an http:// or https:// URL with a host"}
	}
	return nil
}

func (h *httpBackend) head(ctx context.Context, url string) (objectInfo, error) {
	req, err := h.newRequest(ctx, http.MethodHead, url)
	if err != nil {
		return objectInfo{}, err
	}
	countRequest()
	resp, err := h.client.Do(req)
	if err != nil {
		return objectInfo{}, transportError(url, "HEAD", err)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusForbidden, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		// A URL signed for GET only (a presigned S3 URL) refuses HEAD.
		return h.probe(ctx, url)
	default:
		return objectInfo{}, statusError(url, "HEAD", resp.StatusCode, h.deniedHint, "")
	}
	info := objectInfo{size: resp.ContentLength, version: versionOf(resp.Header)}
	if info.size < 0 {
		return objectInfo{}, &Error{URL: url, Op: "HEAD", Status: resp.StatusCode, Detail: "the server does not say the object's size (no Content-Length)"}
	}
	return info, nil
}

// probe describes an object that refuses HEAD with a GET of its first byte:
// Content-Range gives the size.
func (h *httpBackend) probe(ctx context.Context, url string) (objectInfo, error) {
	req, err := h.newRequest(ctx, http.MethodGet, url)
	if err != nil {
		return objectInfo{}, err
	}
	req.Header.Set("Range", "bytes=0-0")
	countRequest()
	resp, err := h.client.Do(req)
	if err != nil {
		return objectInfo{}, transportError(url, "GET", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		_, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || total < 0 {
			return objectInfo{}, &Error{URL: url, Op: "GET", Status: resp.StatusCode, Detail: "the server does not say the object's size (Content-Range)"}
		}
		return objectInfo{size: total, version: versionOf(resp.Header)}, nil
	case http.StatusOK:
		return objectInfo{}, &Error{URL: url, Op: "GET", Status: resp.StatusCode, Kind: ErrRangeIgnored,
			Detail: "the server ignored a Range request and answered with the whole object (HTTP 200 instead of 206); ckpt reads remote files only from servers that honour Range requests"}
	case http.StatusRequestedRangeNotSatisfiable:
		return objectInfo{size: 0, version: versionOf(resp.Header)}, nil // an empty object
	}
	return objectInfo{}, statusError(url, "GET", resp.StatusCode, h.deniedHint, "")
}

// versionOf reads the ETag and Last-Modified of a response.
func versionOf(hd http.Header) formats.ObjectVersion {
	v := formats.ObjectVersion{ETag: hd.Get("ETag")}
	if lm := hd.Get("Last-Modified"); lm != "" {
		if t, err := http.ParseTime(lm); err == nil {
			v.LastModified = t.UTC()
		}
	}
	return v
}

func (h *httpBackend) list(_ context.Context, url string) ([]fs.DirEntry, error) {
	return nil, &Error{URL: url, Op: "list", Kind: formats.ErrNotListable,
		Detail: "an HTTP server cannot list a directory's files: the checkpoint's files must have the standard names"}
}

func (h *httpBackend) getRange(ctx context.Context, url string, off, n int64, info objectInfo) (io.ReadCloser, error) {
	req, err := h.newRequest(ctx, http.MethodGet, url)
	if err != nil {
		return nil, err
	}
	setConditions(req, info.version)
	return h.doRange(req, url, off, n, info)
}

// setConditions makes a GET read only the described version: If-Match on a
// strong ETag, else If-Unmodified-Since on Last-Modified.
func setConditions(req *http.Request, v formats.ObjectVersion) {
	switch {
	case v.ETag != "" && !strings.HasPrefix(v.ETag, "W/"):
		req.Header.Set("If-Match", v.ETag)
	case !v.LastModified.IsZero():
		req.Header.Set("If-Unmodified-Since", v.LastModified.Format(http.TimeFormat))
	}
}

// doRange sends req for bytes [off, off+n) and checks the answer: 206 with
// that range of the expected version. A 200 for part of the object is
// ErrRangeIgnored; a 412, a 416 or a missing object is a change.
func (h *httpBackend) doRange(req *http.Request, url string, off, n int64, info objectInfo) (io.ReadCloser, error) {
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, transportError(url, "GET", err)
	}
	fail := func(e *Error) (io.ReadCloser, error) {
		resp.Body.Close()
		return nil, e
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != off {
			return fail(&Error{URL: url, Op: "GET", Status: resp.StatusCode,
				Detail: fmt.Sprintf("the server answered a request for bytes %d-%d with %q", off, off+n-1, resp.Header.Get("Content-Range"))})
		}
		if total >= 0 && total != info.size {
			return fail(&Error{URL: url, Op: "GET", Status: resp.StatusCode, Kind: errChanged,
				Detail: fmt.Sprintf("its size changed from %d to %d bytes", info.size, total)})
		}
	case http.StatusOK:
		if off != 0 || n != info.size {
			return fail(&Error{URL: url, Op: "GET", Status: resp.StatusCode, Kind: ErrRangeIgnored,
				Detail: "the server ignored a Range request and answered with the whole object (HTTP 200 instead of 206); ckpt reads remote files only from servers that honour Range requests"})
		}
	case http.StatusPreconditionFailed:
		return fail(&Error{URL: url, Op: "GET", Status: resp.StatusCode, Kind: errChanged, Detail: "its ETag or Last-Modified is no longer the one read at open"})
	case http.StatusRequestedRangeNotSatisfiable:
		return fail(&Error{URL: url, Op: "GET", Status: resp.StatusCode, Kind: errChanged, Detail: "it is shorter than it was"})
	default:
		e := statusError(url, "GET", resp.StatusCode, h.deniedHint, "")
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone {
			e.Kind, e.Detail = errChanged, "it is gone"
		}
		return fail(e)
	}
	if got := versionOf(resp.Header); info.pin == "" && changedVersion(info.version, got) {
		return fail(&Error{URL: url, Op: "GET", Status: resp.StatusCode, Kind: errChanged,
			Detail: fmt.Sprintf("its ETag was %s and is now %s", info.version.ETag, got.ETag)})
	}
	return resp.Body, nil
}

// changedVersion reports whether a response's version differs from the
// described one, comparing only what both sides give.
func changedVersion(was, now formats.ObjectVersion) bool {
	if was.ETag != "" && now.ETag != "" && strings.TrimPrefix(was.ETag, "W/") != strings.TrimPrefix(now.ETag, "W/") {
		return true
	}
	return !was.LastModified.IsZero() && !now.LastModified.IsZero() && !was.LastModified.Equal(now.LastModified)
}

// parseContentRange parses "bytes START-END/TOTAL" (TOTAL may be "*", given
// as -1).
func parseContentRange(s string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	a, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false
	}
	if tot == "*" {
		return start, -1, true
	}
	total, err = strconv.ParseInt(tot, 10, 64)
	if err != nil || total < 0 {
		return 0, 0, false
	}
	return start, total, true
}
