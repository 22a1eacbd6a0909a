// Package teststore is a store over a local directory, registered for a URL
// scheme, for the tests of code that reads remote checkpoints through
// formats.FS: "scheme://x/y" is root/x/y. The remote package tests the real
// stores; this one stands for them where the transport is not the point.
package teststore

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
)

// Store is a store over the directory Root. Its objects carry an
// ObjectVersion, as remote objects do; Bump changes it to simulate an object
// replaced under the same name. A Store that is not Listable answers ReadDir
// with formats.ErrNotListable, as plain HTTP does.
type Store struct {
	Scheme   string
	Root     string
	Listable bool
	mu       sync.Mutex
	version  map[string]int
}

// Local is the local path of url.
func (d *Store) Local(p string) string {
	return filepath.Join(d.Root, filepath.FromSlash(strings.TrimPrefix(p, d.Scheme+"://")))
}

func (d *Store) Stat(p string) (fs.FileInfo, error) {
	st, err := os.Stat(d.Local(p))
	if err != nil {
		return nil, err
	}
	return d.info(p, st), nil
}

func (d *Store) ReadDir(p string) ([]fs.DirEntry, error) {
	if !d.Listable {
		return nil, fmt.Errorf("%s: %w", p, formats.ErrNotListable)
	}
	return os.ReadDir(d.Local(p))
}

func (d *Store) Open(p string, _ formats.SourceMode) (formats.Source, error) {
	src, err := formats.Local.Open(d.Local(p), formats.Pread)
	if err != nil {
		return nil, err
	}
	return &dirSource{Source: src, d: d, url: p}, nil
}

// Bump gives the object at url a new version.
func (d *Store) Bump(p string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.version[p]++
}

func (d *Store) info(p string, st fs.FileInfo) fs.FileInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	return objectInfo{FileInfo: st, v: &formats.ObjectVersion{ETag: fmt.Sprintf("%q", fmt.Sprint(d.version[p]))}}
}

type objectInfo struct {
	fs.FileInfo
	v *formats.ObjectVersion
}

func (o objectInfo) Sys() any { return o.v }

type dirSource struct {
	formats.Source
	d   *Store
	url string
}

func (s *dirSource) Path() string { return s.url }
func (s *dirSource) Stat() (fs.FileInfo, error) {
	st, err := s.Source.Stat()
	if err != nil {
		return nil, err
	}
	return s.d.info(s.url, st), nil
}

// Register makes a Store over a new temporary directory the store of scheme.
func Register(t testing.TB, scheme string, listable bool) *Store {
	t.Helper()
	d := &Store{Scheme: scheme, Root: t.TempDir(), Listable: listable, version: map[string]int{}}
	formats.RegisterFS(scheme, d)
	return d
}

// URL is the store's URL of the local path p under Root.
func (d *Store) URL(p string) string {
	rel, err := filepath.Rel(d.Root, p)
	if err != nil {
		panic(err)
	}
	return d.Scheme + "://" + filepath.ToSlash(rel)
}
