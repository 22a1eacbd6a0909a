// Package ckpt_test holds repository-wide checks: the one-way dependency rule of
// the design (cmd → repair/diff → inspect → formats), and the README and docs/
// (size, links, the examples the README shows).
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

// allowed lists, for each package of the module, the project packages its
// non-test code may import. Every package in the tree must be listed (a new
// package states its place in the layering when it is added); commands under
// cmd/ may import anything but each other.
var allowed = map[string][]string{
	"formats":            {"formats/ggml", "formats/pickle"},
	"formats/ggml":       {},
	"formats/pickle":     {},
	"inspect":            {"formats", "formats/ggml", "internal/fp32"},
	"optim":              {"inspect", "formats", "formats/pickle"},
	"diff":               {"optim", "inspect", "formats", "formats/ggml", "internal/fp32"},
	"repair":             {"inspect", "formats"},
	"convert":            {"formats"},
	"remote":             {"formats"},
	"probe":              {"inspect", "formats"},
	"watch":              {"diff", "inspect", "formats"},
	"internal/synth":     {"formats", "formats/ggml"},
	"internal/hostile":   {"formats"},
	"internal/teststore": {"formats"},
	"internal/testenv":   {},
	"internal/fp32":      {},
	"internal/s3test":    {"internal/testenv"},
	"cmd/ckpt":           {"*"},
	"cmd/ckpt-synth":     {"*"},
}

// packageDirs lists every directory of the module that holds Go code (not
// under testdata/ or a hidden directory), relative to the module root.
func packageDirs(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	var out []string
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		if dir != "." && !seen[dir] {
			seen[dir] = true
			out = append(out, dir)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestEveryPackageHasAPlaceInTheLayout(t *testing.T) {
	for _, dir := range packageDirs(t) {
		if _, ok := allowed[dir]; !ok {
			t.Errorf("package %s is not in layout_test.go's allowed map: add it with the project packages it may import", dir)
		}
	}
}

func TestNoGoCodeUnderTestdata(t *testing.T) {
	err := filepath.WalkDir("testdata", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") {
			t.Errorf("%s: testdata/ holds data only (the go tool skips it, so go vet never checks code there); packages live under internal/", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
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
		if len(ok) == 1 && ok[0] == "*" {
			ok = nil
			for other := range allowed {
				if !strings.HasPrefix(other, "cmd/") {
					ok = append(ok, other)
				}
			}
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
