// Package ckpt_test holds repository-wide checks: the one-way dependency rule of
// the design (cmd → repair/diff → inspect → formats).
package ckpt_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/ckpt-tool/ckpt/"

// allowed lists, for each layer, the project packages its non-test code may import.
var allowed = map[string][]string{
	"formats":          {},
	"inspect":          {"formats"},
	"diff":             {"inspect", "formats"},
	"repair":           {"diff", "inspect", "formats"},
	"testdata/synth":   {"formats"},
	"testdata/hostile": {"formats"},
	"testdata/testenv": {},
}

func TestDependenciesPointOneWay(t *testing.T) {
	for pkg, ok := range allowed {
		entries, err := os.ReadDir(pkg)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		okSet := map[string]bool{}
		for _, p := range ok {
			okSet[p] = true
		}
		for _, e := range entries {
			name := e.Name()
			if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(pkg, name), nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				path := strings.Trim(imp.Path.Value, `"`)
				if !strings.HasPrefix(path, module) {
					continue
				}
				dep := strings.TrimPrefix(path, module)
				if dep != pkg && !strings.HasPrefix(dep, pkg+"/") && !okSet[dep] {
					t.Errorf("%s/%s imports %s: %s may only import %v", pkg, name, dep, pkg, ok)
				}
			}
		}
	}
}

func TestNoPackageOutsideTheLayoutImportsCmd(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != ".") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasPrefix(path, "cmd/") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			if strings.HasPrefix(strings.Trim(imp.Path.Value, `"`), module+"cmd") {
				t.Errorf("%s imports a command package; only cmd/ may", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
