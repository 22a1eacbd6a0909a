package formats

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// FS is a place checkpoint files are read from: the local file system, or a
// remote store (object storage, an HTTP server, the Hugging Face Hub)
// registered for a URL scheme with RegisterFS. Paths stay strings: a local
// path, or a URL such as "s3://bucket/run/checkpoint-3600/model.safetensors".
// Every reader in this package goes through FSFor, so a registered store is
// read by the same code as a local directory.
type FS interface {
	// Stat describes the file or directory at path (symlinks followed). A
	// missing path is an error for which errors.Is(err, fs.ErrNotExist).
	Stat(path string) (fs.FileInfo, error)
	// ReadDir lists the entries directly under the directory at path, sorted
	// by name. A store that cannot list (plain HTTP) returns an error wrapping
	// ErrNotListable; readers then look for the file names they know.
	ReadDir(path string) ([]fs.DirEntry, error)
	// Open opens the regular file at path for reading. Anything else is an
	// *Error of kind ErrSpecialFile. A store without memory mapping ignores
	// mode and returns a Source that is not Mapped.
	Open(path string, mode SourceMode) (Source, error)
}

// ErrNotListable is wrapped by FS.ReadDir of a store that cannot list a
// directory's entries.
var ErrNotListable = errors.New("this store cannot list a directory's files")

// ObjectVersion is the Sys() of a remote object's fs.FileInfo: what identifies
// one version of the object. File.CheckUnchanged compares it instead of the
// inode, so an object replaced while it is read is a finding, as for a file.
type ObjectVersion struct {
	ETag         string    // empty when the store gave none
	LastModified time.Time // zero when the store gave none
}

// Local is the local file system.
var Local FS = localFS{}

type localFS struct{}

func (localFS) Stat(p string) (fs.FileInfo, error)      { return os.Stat(p) }
func (localFS) ReadDir(p string) ([]fs.DirEntry, error) { return os.ReadDir(p) }
func (localFS) Open(p string, mode SourceMode) (Source, error) {
	return openLocalSource(p, mode)
}

var (
	storesMu sync.RWMutex
	stores   = map[string]FS{}
)

// RegisterFS makes fsys the store for paths that start with scheme + "://".
// The command registers its remote stores at start-up; a library user may
// register its own (or a test store).
func RegisterFS(scheme string, fsys FS) {
	storesMu.Lock()
	defer storesMu.Unlock()
	stores[strings.ToLower(scheme)] = fsys
}

// Scheme returns the URL scheme of p ("s3", "https", "hf"), or "" for a local
// path.
func Scheme(p string) string {
	i := strings.Index(p, "://")
	if i <= 0 {
		return ""
	}
	for j, r := range p[:i] {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || j > 0 && (r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.')
		if !ok {
			return ""
		}
	}
	return strings.ToLower(p[:i])
}

// IsRemote reports whether p is a URL rather than a local path.
func IsRemote(p string) bool { return Scheme(p) != "" }

// FSFor returns the store that holds p: the registered store for its scheme,
// Local for a local path. An unknown scheme gets a store whose every call
// fails with a clear error.
func FSFor(p string) FS {
	s := Scheme(p)
	if s == "" {
		return Local
	}
	storesMu.RLock()
	defer storesMu.RUnlock()
	if f, ok := stores[s]; ok {
		return f
	}
	return unknownScheme(s)
}

type unknownScheme string

func (u unknownScheme) err(p string) error {
	return fmt.Errorf("%s: no reader for %s:// paths (known: local paths%s)", p, string(u), knownSchemes())
}
func (u unknownScheme) Stat(p string) (fs.FileInfo, error)      { return nil, u.err(p) }
func (u unknownScheme) ReadDir(p string) ([]fs.DirEntry, error) { return nil, u.err(p) }
func (u unknownScheme) Open(p string, _ SourceMode) (Source, error) {
	return nil, u.err(p)
}

func knownSchemes() string {
	storesMu.RLock()
	defer storesMu.RUnlock()
	var out string
	for _, s := range sortedKeys(stores) {
		out += ", " + s + "://"
	}
	return out
}

// splitURL splits a URL path into "scheme://" and the rest.
func splitURL(p string) (head, rest string) {
	s := Scheme(p)
	return p[:len(s)+3], p[len(s)+3:]
}

// JoinPath joins elements to dir: filepath.Join for a local path, a slash
// join that keeps "scheme://" for a URL.
func JoinPath(dir string, elem ...string) string {
	if !IsRemote(dir) {
		return filepath.Join(append([]string{dir}, elem...)...)
	}
	head, rest := splitURL(dir)
	return head + path.Join(append([]string{rest}, elem...)...)
}

// DirOf is filepath.Dir for a local path; for a URL it drops the last element
// and keeps "scheme://" (DirOf("s3://b/run/ckpt") is "s3://b/run").
func DirOf(p string) string {
	if !IsRemote(p) {
		return filepath.Dir(p)
	}
	head, rest := splitURL(p)
	d := path.Dir(strings.TrimSuffix(rest, "/"))
	if d == "." {
		d = ""
	}
	return head + d
}

// BaseOf is filepath.Base for a local path and the last element of a URL's
// path (a trailing slash ignored).
func BaseOf(p string) string {
	if !IsRemote(p) {
		return filepath.Base(p)
	}
	_, rest := splitURL(p)
	return path.Base(strings.TrimSuffix(rest, "/"))
}

// dirListing is one listing of a checkpoint directory, matched against every
// name and pattern Open looks for: one request to a remote store, not one per
// pattern.
type dirListing struct {
	dir      string
	entries  []fs.DirEntry // sorted by name
	listable bool          // false for a store that cannot list (plain HTTP)
}

// listDir lists dir once. A store that cannot list gives an empty listing
// that says so: callers then look for the names they know.
func listDir(dir string) (*dirListing, error) {
	entries, err := FSFor(dir).ReadDir(dir)
	if errors.Is(err, ErrNotListable) {
		return &dirListing{dir: dir}, nil
	}
	if err != nil {
		return nil, err
	}
	return &dirListing{dir: dir, entries: entries, listable: true}, nil
}

// match returns the paths of the entries whose names match pattern, sorted.
// Unlike filepath.Glob on filepath.Join(dir, pattern) it does not treat glob
// characters in dir itself ("run[1]/checkpoint-5") as a pattern.
func (l *dirListing) match(pattern string) []string {
	var out []string
	for _, e := range l.entries {
		if ok, _ := filepath.Match(pattern, e.Name()); ok {
			out = append(out, JoinPath(l.dir, e.Name()))
		}
	}
	return out
}
