package testenv

import (
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that records how a test was stopped.
type recorder struct {
	testing.TB
	failed, skipped string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
}

func TestMissingFailsInCIAndSkipsElsewhere(t *testing.T) {
	for _, ci := range []string{"true", "1", "", "false"} {
		t.Setenv("CI", ci)
		r := &recorder{TB: t}
		Missing(r, "chromium is not installed", "run scripts/install-test-deps.sh")
		inCI := ci == "true" || ci == "1"
		switch {
		case inCI && (r.failed == "" || r.skipped != ""):
			t.Errorf("CI=%q: failed %q, skipped %q; want a failure", ci, r.failed, r.skipped)
		case !inCI && (r.skipped == "" || r.failed != ""):
			t.Errorf("CI=%q: failed %q, skipped %q; want a skip", ci, r.failed, r.skipped)
		}
		if msg := r.failed + r.skipped; !strings.Contains(msg, "chromium is not installed") || !strings.Contains(msg, "scripts/install-test-deps.sh") {
			t.Errorf("CI=%q: %q does not say what is missing and how to get it", ci, msg)
		}
	}
}
