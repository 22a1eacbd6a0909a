package main

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ckpt-tool/ckpt/diff"
	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
)

// JUnit XML reports (--junit FILE on scan and bisect), for the CI systems that
// show test results (GitLab, Jenkins, Azure, CircleCI). The shape is the common
// subset of the JUnit schemas those tools read: <testsuites> holding one
// <testsuite> per checkpoint (scan) or run (bisect), one <testcase> per check
// or checkpoint, with <failure> for findings, <error> for a checkpoint that
// could not be read and <skipped> for one that was not checked.

// junitCounts are the totals both <testsuites> and <testsuite> carry.
type junitCounts struct {
	Name     string `xml:"name,attr"`
	Tests    int    `xml:"tests,attr"`
	Failures int    `xml:"failures,attr"`
	Errors   int    `xml:"errors,attr"`
	Skipped  int    `xml:"skipped,attr"`
	Time     string `xml:"time,attr"`
}

type junitSuites struct {
	XMLName xml.Name `xml:"testsuites"`
	junitCounts
	Suites []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	junitCounts
	Timestamp string      `xml:"timestamp,attr"`
	Hostname  string      `xml:"hostname,attr"`
	Cases     []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

func junitSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
}

// add appends a case and keeps the suite's counts.
func (s *junitSuite) add(c junitCase) {
	s.Tests++
	switch {
	case c.Error != nil:
		s.Errors++
	case c.Failure != nil:
		s.Failures++
	case c.Skipped != nil:
		s.Skipped++
	}
	if c.Time == "" {
		c.Time = "0.000"
	}
	s.Cases = append(s.Cases, c)
}

func newJUnitSuite(name string, start time.Time, elapsed time.Duration) junitSuite {
	host, _ := os.Hostname()
	return junitSuite{junitCounts: junitCounts{Name: name, Time: junitSeconds(elapsed)}, Timestamp: start.UTC().Format("2006-01-02T15:04:05"), Hostname: host}
}

// writeJUnit totals the suites and writes the report atomically (an existing
// file is replaced: CI jobs rerun into the same path).
func writeJUnit(path, name string, suites []junitSuite) error {
	all := junitSuites{junitCounts: junitCounts{Name: name}, Suites: suites}
	var total float64
	for _, s := range suites {
		all.Tests += s.Tests
		all.Failures += s.Failures
		all.Errors += s.Errors
		all.Skipped += s.Skipped
		t, _ := strconv.ParseFloat(s.Time, 64)
		total += t
	}
	all.Time = strconv.FormatFloat(total, 'f', 3, 64)
	out, err := xml.MarshalIndent(all, "", "  ")
	if err != nil {
		return fmt.Errorf("%s: encoding the JUnit report: %w", path, err)
	}
	f, err := formats.CreateAtomic(path, true)
	if err != nil {
		return fmt.Errorf("%s: writing the JUnit report: %w", path, err)
	}
	if _, err := f.Write(append([]byte(xml.Header), append(out, '\n')...)); err != nil {
		f.Abort()
		return fmt.Errorf("%s: writing the JUnit report: %w", path, err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("%s: writing the JUnit report: %w", path, err)
	}
	return nil
}

// junitChecks are the scan checks every checkpoint gets a test case for, in
// this order; a finding of any other check adds its own case.
var junitChecks = []string{inspect.CheckFormat, inspect.CheckIncomplete, inspect.CheckNonFinite, inspect.CheckOutlier, inspect.CheckEmpty}

func findingLine(f inspect.Finding) string {
	where := f.Tensor
	if where == "" {
		where = filepath.Base(f.File)
	}
	if where == "" {
		return fmt.Sprintf("%s: %s", f.Severity, f.Message)
	}
	return fmt.Sprintf("%s: %s: %s", f.Severity, where, f.Message)
}

// scanJUnitSuite is one scanned checkpoint: a case per check, failed by its
// error findings (and warnings with strict).
func scanJUnitSuite(path string, r *inspect.Result, strict bool, start time.Time, elapsed time.Duration) junitSuite {
	s := newJUnitSuite(path, start, elapsed)
	byCheck := map[string][]inspect.Finding{}
	checks := append([]string(nil), junitChecks...)
	for _, f := range r.Findings {
		if _, ok := byCheck[f.Check]; !ok && !contains(checks, f.Check) {
			checks = append(checks, f.Check)
		}
		byCheck[f.Check] = append(byCheck[f.Check], f)
	}
	for _, check := range checks {
		c := junitCase{Name: check, Classname: path}
		var failing, lines []string
		for _, f := range byCheck[check] {
			lines = append(lines, findingLine(f))
			if f.Severity == "error" || (strict && f.Severity == "warning") {
				failing = append(failing, findingLine(f))
			}
		}
		if len(failing) > 0 {
			c.Failure = &junitProblem{Message: fmt.Sprintf("%s: %s", check, plural(len(failing), "finding")), Type: check, Text: junitLines(lines)}
		} else if len(lines) > 0 {
			c.SystemOut = junitLines(lines)
		}
		s.add(c)
	}
	return s
}

// errorJUnitSuite is a checkpoint that could not be scanned at all.
func errorJUnitSuite(path string, err error, start time.Time) junitSuite {
	s := newJUnitSuite(path, start, time.Since(start))
	msg := (&pathError{Path: path, Err: err}).Error()
	s.add(junitCase{Name: "read", Classname: path, Error: &junitProblem{Message: msg, Type: "read", Text: msg}})
	return s
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// bisectJUnitSuite is a bisect: a case per checkpoint (failed when unhealthy,
// skipped when incomplete or not scanned: bisect scans only what its search
// needs), then the drift timeline and the training log as passing cases whose
// output says what they found.
func bisectJUnitSuite(name string, rep *diff.Report, start time.Time, elapsed time.Duration) junitSuite {
	s := newJUnitSuite(name, start, elapsed)
	culprits := make([]string, 0, len(rep.Culprits))
	for _, c := range rep.Culprits {
		culprits = append(culprits, fmt.Sprintf("%s: %s: %s", c.Check, c.Tensor, c.Message))
	}
	for _, cv := range rep.Checkpoints {
		c := junitCase{Name: filepath.Base(cv.Path), Classname: name}
		switch {
		case cv.Incomplete != "":
			c.Skipped = &junitSkipped{Message: "incomplete: " + cv.Incomplete}
		case cv.Verdict == diff.NotScanned:
			c.Skipped = &junitSkipped{Message: "not scanned (the bisect search did not need it)"}
		case cv.Verdict == diff.Unhealthy:
			text := ""
			if fu := rep.FirstUnhealthy; fu != nil && fu.Path == cv.Path {
				text = junitLines(culprits)
			}
			c.Failure = &junitProblem{Message: fmt.Sprintf("unhealthy (step %d): %s", cv.Step, plural(cv.Errors, "error finding")), Type: "unhealthy", Text: text}
		}
		s.add(c)
	}
	if len(rep.Drift) > 0 {
		c := junitCase{Name: "drift", Classname: name}
		if o := rep.DriftOnset; o != nil {
			c.SystemOut = fmt.Sprintf("drift onset between step %d and step %d: relative update %s, %s× the median (%s) of the intervals before",
				o.FromStep, o.ToStep, relText(&o.RelUpdate), o.FactorText(), relText(&o.Baseline))
		} else {
			c.SystemOut = "no drift onset"
		}
		s.add(c)
	}
	if tl := rep.TrainingLog; tl != nil && tl.Path != "" {
		c := junitCase{Name: "training_log", Classname: name}
		var lines []string
		for _, e := range tl.Events {
			lines = append(lines, fmt.Sprintf("%d %s: %s", e.Step, e.Kind, e.Message))
		}
		if len(lines) == 0 {
			lines = append(lines, "nothing noteworthy")
		}
		c.SystemOut = junitLines(lines)
		s.add(c)
	}
	return s
}

// junitMaxLines caps the lines of one case's text (a checkpoint of NaNs has
// a finding per tensor; --json lists them all).
const junitMaxLines = 100

func junitLines(lines []string) string {
	if len(lines) > junitMaxLines {
		more := len(lines) - junitMaxLines
		lines = append(lines[:junitMaxLines:junitMaxLines], fmt.Sprintf("… and %d more (--json lists them all)", more))
	}
	return strings.Join(lines, "\n")
}
