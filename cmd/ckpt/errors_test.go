package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/diff"
	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/repair"
)

// TestErrorsKeepTheirChain: what a command returns still wraps the typed error
// of the library that refused (errors.Is sees it), usage mistakes are usage
// errors and a refused repair is not, and each exits 2 with a hint.
func TestErrorsKeepTheirChain(t *testing.T) {
	good := cliTiny(t, 0, "")
	bad := cliTiny(t, 0, "")
	exists := t.TempDir()
	cases := []struct {
		name  string
		args  []string
		is    error
		usage bool
		hint  string
	}{
		{"output exists", []string{"repair", bad, "--from", good, "-o", exists}, repair.ErrOutputExists, false, "--force"},
		{"same input", []string{"repair", bad, "--from", bad, "-o", filepath.Join(exists, "x")}, repair.ErrSameInput, false, "another checkpoint"},
		{"output inside input", []string{"repair", bad, "--from", good, "-o", filepath.Join(bad, "out")}, repair.ErrOutputIsInput, false, "new path"},
		{"no GOOD in a run", []string{"repair", bad, "--from", "auto", "-o", filepath.Join(exists, "y")}, errNoGood, false, "--from PATH"},
		{"unknown strategy", []string{"repair", bad, "--from", good, "-o", filepath.Join(exists, "z"), "--strategy", "some"}, repair.ErrOptions, true, "--strategy"},
		{"elements with all", []string{"repair", bad, "--from", good, "-o", filepath.Join(exists, "z"), "--strategy", "all", "--elements"}, repair.ErrOptions, true, "--help"},
		{"unknown until", []string{"bisect", "--until", "never", bad, good}, diff.ErrUnknownUntil, true, "--until"},
		{"no series", []string{"bisect", t.TempDir()}, diff.ErrNoSeries, true, "checkpoint-N"},
		{"no weights", []string{"inspect", t.TempDir()}, formats.ErrNoWeights, false, ""},
	}
	for _, c := range cases {
		r := cliRun(t, c.args...)
		if r.code != 2 {
			t.Errorf("%s: exit %d, want 2\n%s%s", c.name, r.code, r.stdout, r.stderr)
		}
		if !errors.Is(r.err, c.is) {
			t.Errorf("%s: error %v (%T) does not wrap %v", c.name, r.err, r.err, c.is)
		}
		var ue *usageError
		if errors.As(r.err, &ue) != c.usage {
			t.Errorf("%s: usage error %v, want %v", c.name, !c.usage, c.usage)
		}
		if c.hint != "" && (!strings.Contains(r.stderr, "ckpt: hint: ") || !strings.Contains(r.stderr, c.hint)) {
			t.Errorf("%s: stderr lacks a hint with %q:\n%s", c.name, c.hint, r.stderr)
		}
	}

	// An interrupted repair says so and still wraps context.Canceled.
	err := repairError(context.Canceled)
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "interrupted: nothing was written") {
		t.Errorf("interrupted: %v", err)
	}
	var buf bytes.Buffer
	if code := exitCode(withHint(repair.ErrNoSpace, "free some space"), &buf); code != 2 || !strings.Contains(buf.String(), "ckpt: hint: free some space") {
		t.Errorf("hinted error: exit %d, %q", code, buf.String())
	}
}
