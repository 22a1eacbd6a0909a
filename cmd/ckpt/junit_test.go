package main

import (
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-tool/ckpt/internal/synth"
	"github.com/ckpt-tool/ckpt/internal/testenv"
)

// xmlNode is a parsed XML element, kept generic so that the checks below see
// exactly what a CI system's parser sees (not what our own types would decode).
type xmlNode struct {
	Name     string
	Attrs    map[string]string
	Children []*xmlNode
	Text     string
}

func parseXMLTree(t *testing.T, data []byte) *xmlNode {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(string(data)))
	var stack []*xmlNode
	var root *xmlNode
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("JUnit report is not well-formed XML: %v\n%s", err, data)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			n := &xmlNode{Name: tk.Name.Local, Attrs: map[string]string{}}
			for _, a := range tk.Attr {
				n.Attrs[a.Name.Local] = a.Value
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, n)
			} else if root != nil {
				t.Fatal("JUnit report has two root elements")
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].Text += string(tk)
			}
		}
	}
	if root == nil {
		t.Fatal("JUnit report is empty")
	}
	return root
}

// checkJUnitSchema holds a report to the rules of testdata/junit/junit.xsd
// (the subset of the JUnit schema GitLab and Jenkins read): testsuites holds
// only testsuite elements; a testsuite has a name, counts and a time, and holds
// testcase elements (and optionally properties, system-out, system-err); a
// testcase has name, classname and time, and at most one of skipped, error or
// failure (before system-out/system-err); failure and error carry message and
// type. Counts are non-negative integers and agree with the cases; times are
// non-negative decimals; timestamps are xs:dateTime.
func checkJUnitSchema(t *testing.T, data []byte) *xmlNode {
	t.Helper()
	root := parseXMLTree(t, data)
	if root.Name != "testsuites" {
		t.Fatalf("root element <%s>, want <testsuites>", root.Name)
	}
	count := func(n *xmlNode, attr string, required bool) int {
		v, ok := n.Attrs[attr]
		if !ok {
			if required {
				t.Errorf("<%s name=%q> has no %s attribute", n.Name, n.Attrs["name"], attr)
			}
			return 0
		}
		c, err := strconv.Atoi(v)
		if err != nil || c < 0 {
			t.Errorf("<%s> %s=%q is not a non-negative integer", n.Name, attr, v)
		}
		return c
	}
	seconds := func(n *xmlNode, required bool) {
		v, ok := n.Attrs["time"]
		if !ok {
			if required {
				t.Errorf("<%s name=%q> has no time attribute", n.Name, n.Attrs["name"])
			}
			return
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || strings.ContainsAny(v, "eE") || math.IsInf(f, 0) {
			t.Errorf("<%s> time=%q is not a non-negative xs:decimal", n.Name, v)
		}
	}
	var all [4]int // tests, failures, errors, skipped
	for _, s := range root.Children {
		if s.Name != "testsuite" {
			t.Errorf("<testsuites> holds <%s>; only <testsuite> is allowed", s.Name)
			continue
		}
		if s.Attrs["name"] == "" {
			t.Errorf("<testsuite> without a name")
		}
		seconds(s, true)
		if ts, ok := s.Attrs["timestamp"]; ok {
			if _, err := time.Parse("2006-01-02T15:04:05", ts); err != nil {
				t.Errorf("testsuite timestamp %q is not an xs:dateTime: %v", ts, err)
			}
		}
		var got [4]int
		seenCase, seenOut := false, false
		for _, c := range s.Children {
			switch c.Name {
			case "properties":
				if seenCase || seenOut {
					t.Errorf("<properties> must come first in <testsuite>")
				}
				continue
			case "system-out", "system-err":
				seenOut = true
				continue
			case "testcase":
				if seenOut {
					t.Errorf("<testcase> after <system-out>/<system-err> in <testsuite>")
				}
				seenCase = true
			default:
				t.Errorf("<testsuite> holds <%s>", c.Name)
				continue
			}
			got[0]++
			for _, a := range []string{"name", "classname"} {
				if _, ok := c.Attrs[a]; !ok {
					t.Errorf("<testcase> without the required %s attribute: %v", a, c.Attrs)
				}
			}
			seconds(c, true)
			outcome, out := "", false
			for _, k := range c.Children {
				switch k.Name {
				case "failure", "error", "skipped":
					if outcome != "" || out {
						t.Errorf("testcase %q: <%s> after <%s>: at most one of failure, error, skipped, before any output", c.Attrs["name"], k.Name, outcome)
					}
					outcome = k.Name
					if k.Name != "skipped" {
						for _, a := range []string{"message", "type"} {
							if _, ok := k.Attrs[a]; !ok {
								t.Errorf("testcase %q: <%s> without %s", c.Attrs["name"], k.Name, a)
							}
						}
					}
				case "system-out", "system-err":
					out = true
				default:
					t.Errorf("testcase %q holds <%s>", c.Attrs["name"], k.Name)
				}
			}
			switch outcome {
			case "failure":
				got[1]++
			case "error":
				got[2]++
			case "skipped":
				got[3]++
			}
		}
		want := [4]int{count(s, "tests", true), count(s, "failures", true), count(s, "errors", true), count(s, "skipped", false)}
		if got != want {
			t.Errorf("testsuite %q: counts (tests, failures, errors, skipped) say %v, its cases are %v", s.Attrs["name"], want, got)
		}
		for i := range all {
			all[i] += got[i]
		}
	}
	total := [4]int{count(root, "tests", true), count(root, "failures", true), count(root, "errors", true), count(root, "skipped", false)}
	if total != all {
		t.Errorf("testsuites counts %v, the suites hold %v", total, all)
	}
	seconds(root, false)
	return root
}

// validateXSD validates with xmllint against the committed schema too
// (libxml2-utils; skipped without it outside CI).
func validateXSD(t *testing.T, file string) {
	t.Helper()
	xmllint := testenv.Command(t, "xmllint", "libxml2-utils")
	xsd := filepath.Join(cliModuleRoot(t), "cmd", "ckpt", "testdata", "junit", "junit.xsd")
	out, err := exec.Command(xmllint, "--noout", "--schema", xsd, file).CombinedOutput()
	if err != nil {
		t.Errorf("xmllint --schema junit.xsd %s: %v\n%s", file, err, out)
	}
}

func junitCases(root *xmlNode) map[string]*xmlNode {
	out := map[string]*xmlNode{}
	for _, s := range root.Children {
		for _, c := range s.Children {
			if c.Name == "testcase" {
				out[c.Attrs["classname"]+"|"+c.Attrs["name"]] = c
			}
		}
	}
	return out
}

func outcome(c *xmlNode) (string, *xmlNode) {
	for _, k := range c.Children {
		if k.Name == "failure" || k.Name == "error" || k.Name == "skipped" {
			return k.Name, k
		}
	}
	return "pass", nil
}

func TestScanJUnit(t *testing.T) {
	healthy := cliTiny(t, 0, "")
	bad := cliTiny(t, 2, "")
	tensor := "model.layers.1.mlp.up_proj.weight"
	if err := synth.SetValues(bad, tensor, map[int]float64{5: math.NaN()}); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "gone <&\"'>")
	out := filepath.Join(t.TempDir(), "report.xml")
	if err := os.WriteFile(out, []byte("old report"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := cliRun(t, "scan", "--junit", out, healthy, bad, missing)
	r.wantCode(t, 2) // the missing path
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	root := checkJUnitSchema(t, data)
	validateXSD(t, out)
	if n := len(root.Children); n != 3 {
		t.Fatalf("%d test suites, want one per path (3)", n)
	}
	cases := junitCases(root)
	for _, check := range junitChecks {
		if o, _ := outcome(cases[healthy+"|"+check]); o != "pass" {
			t.Errorf("healthy checkpoint, check %s: %s", check, o)
		}
	}
	o, f := outcome(cases[bad+"|nonfinite"])
	if o != "failure" || !strings.Contains(f.Text, tensor) || f.Attrs["type"] != "nonfinite" {
		t.Errorf("NaN checkpoint, check nonfinite: %s %v", o, f)
	}
	if o, _ := outcome(cases[bad+"|format"]); o != "pass" {
		t.Errorf("NaN checkpoint, check format: %s", o)
	}
	o, e := outcome(cases[missing+"|read"])
	if o != "error" || !strings.Contains(e.Attrs["message"], "no such file") {
		t.Errorf("missing path: %s %v", o, e)
	}
	if root.Attrs["failures"] != "1" || root.Attrs["errors"] != "1" {
		t.Errorf("totals %v", root.Attrs)
	}
	// written atomically: nothing but the report is left in its directory
	des, _ := os.ReadDir(filepath.Dir(out))
	if len(des) != 1 {
		t.Errorf("report directory holds %d entries, want only the report", len(des))
	}

	// healthy alone: exit 0, every case passes
	r = cliRun(t, "scan", "--junit", out, healthy)
	r.wantCode(t, 0)
	data, _ = os.ReadFile(out)
	root = checkJUnitSchema(t, data)
	if root.Attrs["failures"] != "0" || root.Attrs["errors"] != "0" || root.Attrs["tests"] != strconv.Itoa(len(junitChecks)) {
		t.Errorf("healthy totals %v", root.Attrs)
	}
}

func TestBisectJUnit(t *testing.T) {
	run, truth := writeRun(t, synth.RunOptions{Seed: 3, Checkpoints: 8, JumpStep: 350, NaNStep: 650})
	out := filepath.Join(t.TempDir(), "bisect.xml")
	r := cliRun(t, "bisect", "--junit", out, run)
	r.wantCode(t, 1)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	root := checkJUnitSchema(t, data)
	validateXSD(t, out)
	cases := junitCases(root)
	name := func(step int) string { return run + "|checkpoint-" + strconv.Itoa(step) }
	o, f := outcome(cases[name(truth.FirstUnhealthy)])
	if o != "failure" || !strings.Contains(f.Text, "nonfinite") {
		t.Errorf("first unhealthy checkpoint-%d: %s %v", truth.FirstUnhealthy, o, f)
	}
	if o, _ := outcome(cases[name(truth.LastHealthy)]); o != "pass" {
		t.Errorf("last healthy checkpoint-%d: %s", truth.LastHealthy, o)
	}
	if o, _ := outcome(cases[name(truth.Steps[1])]); o != "skipped" {
		t.Errorf("checkpoint-%d, which the search does not scan: %s", truth.Steps[1], o)
	}
	drift := cases[run+"|drift"]
	if drift == nil {
		t.Fatal("no drift test case")
	}
	var text string
	for _, k := range drift.Children {
		text += k.Text
	}
	if want := "drift onset between step " + strconv.Itoa(truth.DriftFrom) + " and step " + strconv.Itoa(truth.DriftTo); !strings.Contains(text, want) {
		t.Errorf("drift case says %q, want %q", text, want)
	}
	if cases[run+"|training_log"] == nil {
		t.Error("no training_log test case")
	}
}
