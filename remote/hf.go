package remote

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/ckpt-tool/ckpt/formats"
)

// The Hugging Face Hub: hf://[datasets/|spaces/]org/repo[@rev]/path.
//
// An object is described by a HEAD of its resolve URL,
// ${HF_ENDPOINT:-https://huggingface.co}/{repo}/resolve/{rev}/{path}, that
// follows redirects within the Hub (a renamed repository) but not the one to
// the CDN that serves large (LFS) files: that redirect's X-Linked-Size and
// X-Linked-Etag describe the file, and X-Repo-Commit names the commit {rev}
// pointed at. Its bytes are then read from resolve/{commit}/{path}, so a
// branch that moves while it is read cannot mix two versions; GET follows the
// redirect to the CDN, which gets no Authorization header (Go drops it on a
// redirect to another host). Directories are listed with the Hub API,
// /api/{models|datasets|spaces}/{repo}/tree/{rev}/{path}, page by page.
// HF_TOKEN, when set, is sent as a bearer token.

// hfRef is a parsed hf:// URL.
type hfRef struct {
	kind string // "models", "datasets" or "spaces"
	repo string // org/name
	rev  string // branch, tag or commit; "main" when not given
	path string // inside the repository, "" for its root
}

// parseHF parses an hf:// URL. The revision may be percent-encoded
// (hf://org/repo@refs%2Fpr%2F1/model.safetensors).
func parseHF(u string) (hfRef, error) {
	rest, ok := strings.CutPrefix(u, "hf://")
	if !ok {
		return hfRef{}, &Error{URL: u, Kind: ErrBadURL, Detail: "not an hf:// URL"}
	}
	r := hfRef{kind: "models"}
	for _, k := range []string{"datasets", "spaces", "models"} {
		if s, ok := strings.CutPrefix(rest, k+"/"); ok {
			r.kind, rest = k, s
			break
		}
	}
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" || parts[1] == "@" {
		return hfRef{}, &Error{URL: u, Kind: ErrBadURL, Detail: "an hf:// URL names a repository as hf://org/repo[@revision]/path"}
	}
	name, rev, hasRev := strings.Cut(parts[1], "@")
	r.repo, r.rev = parts[0]+"/"+name, "main"
	if hasRev {
		dec, err := url.PathUnescape(rev)
		if err != nil || dec == "" {
			return hfRef{}, &Error{URL: u, Kind: ErrBadURL, Detail: fmt.Sprintf("bad revision %q", rev)}
		}
		r.rev = dec
	}
	for _, s := range []string{parts[0], name} {
		if s == "." || s == ".." || strings.ContainsAny(s, "?#") {
			return hfRef{}, &Error{URL: u, Kind: ErrBadURL, Detail: fmt.Sprintf("bad repository name %q", r.repo)}
		}
	}
	if len(parts) == 3 {
		r.path = strings.Trim(parts[2], "/")
	}
	for _, el := range strings.Split(r.path, "/") {
		if el == "." || el == ".." {
			return hfRef{}, &Error{URL: u, Kind: ErrBadURL, Detail: "a path inside a repository cannot hold . or .."}
		}
	}
	return r, nil
}

// escapePath percent-encodes each element of a slash-separated path.
func escapePath(p string) string {
	els := strings.Split(p, "/")
	for i, e := range els {
		els[i] = url.PathEscape(e)
	}
	return strings.Join(els, "/")
}

// hfBackend is the Hub: an httpBackend for the bytes, its own description and
// listing.
type hfBackend struct {
	h        *httpBackend
	endpoint string
	token    bool
	// noCDN is the client of HEAD requests: it follows redirects within the
	// Hub, not the one to the CDN.
	noCDN *http.Client
}

// newHFBackend reads HF_ENDPOINT and HF_TOKEN.
func newHFBackend() *hfBackend {
	endpoint := strings.TrimRight(os.Getenv("HF_ENDPOINT"), "/")
	if endpoint == "" {
		endpoint = "https://huggingface.co"
	}
	token := os.Getenv("HF_TOKEN")
	h := newHTTPBackend()
	if token != "" {
		h.deniedHint = "the token in HF_TOKEN has no access to this repository (is it gated? accept its terms on the Hub)"
	} else {
		h.deniedHint = "set HF_TOKEN to a token that can read this repository (private and gated repositories need one)"
	}
	hub, _ := url.Parse(endpoint)
	h.header = func(req *http.Request) {
		// The token goes to the Hub only, never to a CDN a redirect names.
		if token != "" && hub != nil && req.URL.Host == hub.Host {
			req.Header.Set("Authorization", "Bearer "+token)
		}
	}
	h.client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return fmt.Errorf("stopped after %d redirects", len(via))
		}
		if hub == nil || req.URL.Host != hub.Host {
			req.Header.Del("Authorization") // Go keeps it for another port of the same host
		}
		return nil
	}
	noCDN := *h.client
	noCDN.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 || req.URL.Host != via[0].URL.Host {
			return http.ErrUseLastResponse
		}
		h.header(req)
		return nil
	}
	return &hfBackend{h: h, endpoint: endpoint, token: token != "", noCDN: &noCDN}
}

func (b *hfBackend) repoURL(r hfRef) string {
	if r.kind == "models" {
		return b.endpoint + "/" + r.repo
	}
	return b.endpoint + "/" + r.kind + "/" + r.repo
}

func (b *hfBackend) resolveURL(r hfRef, rev string) string {
	return b.repoURL(r) + "/resolve/" + url.PathEscape(rev) + "/" + escapePath(r.path)
}

func (b *hfBackend) treeURL(r hfRef) string {
	u := b.endpoint + "/api/" + r.kind + "/" + r.repo + "/tree/" + url.PathEscape(r.rev)
	if r.path != "" {
		u += "/" + escapePath(r.path)
	}
	return u
}

// hubError turns a Hub error response into an *Error, reading its
// X-Error-Code (RepoNotFound, GatedRepo, RevisionNotFound, EntryNotFound) and
// X-Error-Message.
func (b *hfBackend) hubError(u, op string, resp *http.Response) *Error {
	code, msg := resp.Header.Get("X-Error-Code"), resp.Header.Get("X-Error-Message")
	e := statusError(u, op, resp.StatusCode, b.h.deniedHint, msg)
	switch code {
	case "RepoNotFound":
		e.Kind, e.Detail = fs.ErrNotExist, "repository not found"
		if !b.token {
			e.Kind, e.Detail = ErrAccessDenied, "repository not found, or private: set HF_TOKEN to a token that can read it"
		}
	case "RevisionNotFound":
		e.Kind, e.Detail = fs.ErrNotExist, "revision not found"
	case "EntryNotFound":
		e.Kind, e.Detail = fs.ErrNotExist, "no such file in the repository"
	case "GatedRepo":
		e.Kind, e.Detail = ErrAccessDenied, "gated repository: "+b.h.deniedHint
	}
	return e
}

func (b *hfBackend) check(u string) error {
	_, err := parseHF(u)
	return err
}

func (b *hfBackend) head(ctx context.Context, u string) (objectInfo, error) {
	r, err := parseHF(u)
	if err != nil {
		return objectInfo{}, err
	}
	if r.path == "" {
		return objectInfo{}, &Error{URL: u, Kind: fs.ErrNotExist, Detail: "the root of a repository is a directory"}
	}
	req, err := b.h.newRequest(ctx, http.MethodHead, b.resolveURL(r, r.rev))
	if err != nil {
		return objectInfo{}, err
	}
	countRequest()
	resp, err := b.noCDN.Do(req)
	if err != nil {
		return objectInfo{}, transportError(u, "HEAD", err)
	}
	resp.Body.Close()
	redirected := resp.StatusCode >= 300 && resp.StatusCode < 400
	if resp.StatusCode != http.StatusOK && !redirected {
		return objectInfo{}, b.hubError(u, "HEAD", resp)
	}
	hd := resp.Header
	info := objectInfo{size: resp.ContentLength, version: versionOf(hd), pin: hd.Get("X-Repo-Commit")}
	if e := hd.Get("X-Linked-Etag"); e != "" {
		info.version.ETag = e
	}
	if s := hd.Get("X-Linked-Size"); s != "" {
		if _, err := fmt.Sscan(s, &info.size); err != nil {
			info.size = -1
		}
	} else if redirected {
		info.size = -1
	}
	// The content's hash is the version: Last-Modified, when the Hub sends
	// one, is not stable across requests for the same content.
	info.version.ETag = strings.TrimPrefix(info.version.ETag, "W/")
	info.version.LastModified = time.Time{}
	if info.size < 0 {
		return objectInfo{}, &Error{URL: u, Op: "HEAD", Status: resp.StatusCode, Detail: "the Hub did not say the file's size"}
	}
	if info.pin == "" {
		info.pin = r.rev
	}
	return info, nil
}

func (b *hfBackend) getRange(ctx context.Context, u string, off, n int64, info objectInfo) (io.ReadCloser, error) {
	r, err := parseHF(u)
	if err != nil {
		return nil, err
	}
	req, err := b.h.newRequest(ctx, http.MethodGet, b.resolveURL(r, info.pin))
	if err != nil {
		return nil, err
	}
	rc, err := b.h.doRange(req, u, off, n, info)
	return rc, err
}

// maxTreePage bounds one page of a Hub listing.
const maxTreePage = 32 << 20

func (b *hfBackend) list(ctx context.Context, u string) ([]fs.DirEntry, error) {
	r, err := parseHF(u)
	if err != nil {
		return nil, err
	}
	var out []fs.DirEntry
	next := b.treeURL(r)
	for pages := 0; next != ""; pages++ {
		if pages >= 1000 {
			return nil, &Error{URL: u, Op: "list", Detail: "the Hub's listing has more than 1000 pages"}
		}
		req, err := b.h.newRequest(ctx, http.MethodGet, next)
		if err != nil {
			return nil, err
		}
		countRequest()
		resp, err := b.h.client.Do(req)
		if err != nil {
			return nil, transportError(u, "list", err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, b.hubError(u, "list", resp)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxTreePage+1))
		resp.Body.Close()
		if err != nil {
			return nil, transportError(u, "list", err)
		}
		if len(data) > maxTreePage {
			return nil, &Error{URL: u, Op: "list", Detail: "a page of the Hub's listing is larger than 32 MiB"}
		}
		entries, err := parseHFTree(data, r.path)
		if err != nil {
			return nil, &Error{URL: u, Op: "list", Err: err, Detail: "the Hub's listing cannot be read: " + err.Error()}
		}
		out = append(out, entries...)
		next = nextLink(resp.Header.Get("Link"))
		if next != "" && !sameHost(next, b.endpoint) {
			return nil, &Error{URL: u, Op: "list", Detail: "the Hub's listing continues on another host"}
		}
	}
	return out, nil
}

// hfTreeEntry is one entry of the Hub's tree listing.
type hfTreeEntry struct {
	Type string `json:"type"` // "file" or "directory"
	Oid  string `json:"oid"`
	Size int64  `json:"size"`
	Path string `json:"path"` // from the repository's root
	LFS  *struct {
		Oid  string `json:"oid"`
		Size int64  `json:"size"`
	} `json:"lfs"`
}

// parseHFTree reads one page of a tree listing of the directory dir (a path
// from the repository's root, "" for the root). Entries that are not directly
// under dir, or whose names are not plain names, are left out.
func parseHFTree(data []byte, dir string) ([]fs.DirEntry, error) {
	var entries []hfTreeEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, err
	}
	var out []fs.DirEntry
	for _, e := range entries {
		parent, name := path.Split(strings.TrimSuffix(e.Path, "/"))
		if strings.TrimSuffix(parent, "/") != dir || name == "" || name == "." || name == ".." {
			continue
		}
		switch e.Type {
		case "directory":
			out = append(out, dirEntryOf(name))
		case "file":
			size, etag := e.Size, e.Oid
			if e.LFS != nil {
				size, etag = e.LFS.Size, e.LFS.Oid
			}
			if size < 0 {
				return nil, fmt.Errorf("entry %q has a negative size", e.Path)
			}
			out = append(out, fileEntry(name, size, formats.ObjectVersion{ETag: `"` + etag + `"`}))
		}
	}
	return out, nil
}

// nextLink returns the URL of a Link header's rel="next", "" when none.
func nextLink(h string) string {
	for _, l := range strings.Split(h, ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(l), ";")
		if !ok || !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
			continue
		}
		target = strings.TrimSpace(target)
		if len(target) >= 2 && target[0] == '<' && target[len(target)-1] == '>' && !strings.ContainsAny(target[1:len(target)-1], "<>") {
			return target[1 : len(target)-1]
		}
	}
	return ""
}

// sameHost reports whether u is on endpoint's host.
func sameHost(u, endpoint string) bool {
	a, err1 := url.Parse(u)
	b, err2 := url.Parse(endpoint)
	return err1 == nil && err2 == nil && a.Host == b.Host && a.Scheme == b.Scheme
}
