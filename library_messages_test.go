package ckpt_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// commandFlag is a command-line flag written into a message.
var commandFlag = regexp.MustCompile(`(^|[^A-Za-z0-9_-])--[a-z][a-z_-]*`)

// foreignFlags are flags of other programs a message may name (the trainer's
// resume flag is advice about the training script, not about ckpt).
var foreignFlags = map[string]bool{"--resume_from_checkpoint": true}

// TestLibrariesDoNotNameFlags: library packages return typed errors and plain
// messages; only cmd/ckpt knows the command line and adds hints naming flags.
func TestLibrariesDoNotNameFlags(t *testing.T) {
	for _, dir := range packageDirs(t) {
		if strings.HasPrefix(dir, "cmd/") || strings.HasPrefix(dir, "internal/") {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			fset := token.NewFileSet()
			file, err := parser.ParseFile(fset, f, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(file, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				for _, m := range commandFlag.FindAllString(lit.Value, -1) {
					if flag := m[strings.Index(m, "--"):]; !foreignFlags[flag] {
						t.Errorf("%s: %s names the flag %s: return a typed error and let cmd/ckpt add the hint", fset.Position(lit.Pos()), lit.Value, flag)
					}
				}
				return true
			})
		}
	}
}
