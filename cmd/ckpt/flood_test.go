package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFloodOfFindings: an index naming 50,000 tensors its shard lacks (10,000
// with -short; the 200,000 behave the same, at four times the cost). Text output shows the first few findings of the kind and one
// line counting the rest, so inspect, scan and diff stay small on stdout and
// stderr; --json still lists every finding.
func TestFloodOfFindings(t *testing.T) {
	n := 50_000
	if testing.Short() {
		n = 10_000
	}
	dir := ghostIndexCheckpoint(t, n)
	more := fmt.Sprintf("… and %s more of the same kind (--json lists them all)", groupDigits(uint64(n-maxSameKind)))
	for _, args := range [][]string{
		{"inspect", dir},
		{"scan", "--no-progress", dir},
		{"diff", "--no-progress", dir, dir},
	} {
		r := cliRun(t, args...)
		if r.code != 1 && r.code != 2 {
			t.Errorf("%v: exit %d, want 1 or 2", args, r.code)
		}
		if len(r.stdout) > 16<<10 || len(r.stderr) > 4<<10 {
			t.Errorf("%v: %d bytes on stdout and %d on stderr, want at most 16 kB and 4 kB", args, len(r.stdout), len(r.stderr))
		}
		if got := strings.Count(r.stdout+r.stderr, `"ghost.`); got != maxSameKind {
			t.Errorf("%v: %d absent tensors named, want the first %d", args, got, maxSameKind)
		}
		if args[0] != "diff" && !strings.Contains(r.stdout, more) {
			t.Errorf("%v: no line %q:\n%s", args, more, r.stdout)
		}
		if args[0] == "diff" && !strings.Contains(r.stderr, "more of the same kind") {
			t.Errorf("%v: stderr does not count the rest:\n%s", args, r.stderr)
		}

		if args[0] == "scan" {
			continue // its findings are inspect's, written by the same code
		}
		json := cliRun(t, append([]string{args[0], "--json"}, args[1:]...)...)
		want := n
		if args[0] == "diff" {
			want = 2 * n // A's and B's
		}
		if got := strings.Count(json.stdout, "absent from that shard"); got != want {
			t.Errorf("%v --json: %d absent tensors listed, want all %d", args, got, want)
		}
	}
}

// ghostIndexCheckpoint writes a tiny checkpoint whose index names n tensors
// its shard lacks (ghost.0.weight, ...) and returns its directory.
func ghostIndexCheckpoint(t *testing.T, n int) string {
	t.Helper()
	dir := cliTiny(t, 1, "")
	var b strings.Builder
	b.WriteString(`{"metadata":{},"weight_map":{`)
	for i := range n {
		fmt.Fprintf(&b, `"ghost.%d.weight":"model.safetensors",`, i)
	}
	b.WriteString(`"model.norm.weight":"model.safetensors"}}`)
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
