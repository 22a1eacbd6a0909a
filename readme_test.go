package ckpt_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// maxReadme is the README's size limit: it says what ckpt is, how to install
// and start, and links to docs/ for the rest.
const maxReadme = 12 << 10

func TestReadmeIsShort(t *testing.T) {
	st, err := os.Stat("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > maxReadme {
		t.Errorf("README.md is %d bytes, more than %d: move details to docs/ and link them", st.Size(), maxReadme)
	}
}

// markdownFiles are the pages whose links are checked: the README, CONTRIBUTING.md
// and everything under docs/.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md", "CONTRIBUTING.md"}
	err := filepath.WalkDir("docs", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

var (
	linkRE     = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	codeSpanRE = regexp.MustCompile("`[^`]*`")
	headingRE  = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
)

// prose returns the lines of a Markdown page outside code blocks (indented or
// fenced), with inline code spans removed.
func prose(text string) []string {
	var out []string
	fenced := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced || strings.HasPrefix(line, "    ") || strings.HasPrefix(line, "\t") {
			continue
		}
		out = append(out, codeSpanRE.ReplaceAllString(line, ""))
	}
	return out
}

// anchors are the fragment names GitHub gives a page's headings: lower case,
// punctuation dropped, spaces turned into hyphens, repeats numbered.
func anchors(text string) map[string]bool {
	seen := map[string]int{}
	out := map[string]bool{}
	fenced := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
		}
		m := headingRE.FindStringSubmatch(line)
		if fenced || m == nil {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(m[1]) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		slug := b.String()
		if n := seen[slug]; n > 0 {
			out[slug+"-"+strconv.Itoa(n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

// Every relative link of the README and the pages it links resolves: the file
// exists, and a #fragment names a heading of the page it points to.
func TestDocLinksResolve(t *testing.T) {
	for _, page := range markdownFiles(t) {
		data, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range prose(string(data)) {
			for _, m := range linkRE.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				file, frag, _ := strings.Cut(target, "#")
				dest := page
				if file != "" {
					dest = filepath.Join(filepath.Dir(page), filepath.FromSlash(file))
				}
				st, err := os.Stat(dest)
				if err != nil {
					t.Errorf("%s: link %q: %v", page, target, err)
					continue
				}
				if frag == "" {
					continue
				}
				if st.IsDir() || !strings.HasSuffix(dest, ".md") {
					t.Errorf("%s: link %q: a fragment on something that is not a Markdown page", page, target)
					continue
				}
				text, _ := os.ReadFile(dest)
				if !anchors(string(text))[frag] {
					t.Errorf("%s: link %q: %s has no heading #%s", page, target, dest, frag)
				}
			}
		}
	}
}

// The README keeps the test command CI runs.
func TestReadmeKeepsTestCommand(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "go test ./...") {
		t.Error("README.md no longer shows the test command `go test ./...`")
	}
}

// codeBlocks returns the README's indented code blocks, each as its lines with
// the four-space indent removed (blank lines inside a block kept).
func codeBlocks(text string) [][]string {
	var blocks [][]string
	var cur []string
	flush := func() {
		for len(cur) > 0 && cur[len(cur)-1] == "" {
			cur = cur[:len(cur)-1]
		}
		if len(cur) > 0 {
			blocks = append(blocks, cur)
		}
		cur = nil
	}
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, "    "):
			cur = append(cur, strings.TrimRight(line[4:], " "))
		case strings.TrimSpace(line) == "" && cur != nil:
			cur = append(cur, "")
		default:
			flush()
		}
	}
	flush()
	return blocks
}

// example is one command the README shows: its words, the exit status it
// claims, and the output lines it shows ("…" marks what is left out).
type example struct {
	line   string
	goRun  bool // "go run ./cmd/ckpt …", run from the module root
	args   []string
	status int
	output []string
}

var exitRE = regexp.MustCompile(`^(.*?)\s+#.*\bexit status (\d+)\b`)

// readmeExamples finds every command line of the README that runs ckpt: either
// "$ ckpt ARGS   # exit status N" followed by the output it shows, or the
// quick start's "go run ./cmd/ckpt ARGS   # … exit status N".
func readmeExamples(t *testing.T, text string) []example {
	t.Helper()
	var out []example
	for _, block := range codeBlocks(text) {
		for i := 0; i < len(block); i++ {
			line := block[i]
			var e example
			switch {
			case strings.HasPrefix(line, "$ "):
			case strings.HasPrefix(line, "go run ./cmd/ckpt "):
				e.goRun = true
			case strings.HasPrefix(line, "ckpt "):
				t.Errorf("README: %q: write a command as \"$ ckpt … # exit status N\" so its test runs it", line)
				continue
			default:
				continue
			}
			m := exitRE.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("README: %q: say which exit status it has (\"# exit status N\")", line)
				continue
			}
			e.line = line
			e.status, _ = strconv.Atoi(m[2])
			cmd := strings.TrimPrefix(m[1], "$ ")
			if strings.ContainsAny(cmd, "'\"\\|&;<>$`") {
				t.Errorf("README: %q: keep example commands free of quoting and shell syntax", line)
				continue
			}
			e.args = strings.Fields(cmd)
			if e.goRun {
				e.args = e.args[3:] // after "go run ./cmd/ckpt"
			} else if e.args[0] != "ckpt" {
				t.Errorf("README: %q: only ckpt commands are shown with $", line)
				continue
			} else {
				e.args = e.args[1:]
				for i+1 < len(block) && !strings.HasPrefix(block[i+1], "$ ") {
					i++
					e.output = append(e.output, block[i])
				}
			}
			out = append(out, e)
		}
	}
	return out
}

// durationRE matches a duration ("under 1ms" too, what a tiny scan prints)
// and the throughput scan adds after it when the scan took long enough to
// measure (which depends on the machine's load).
var durationRE = regexp.MustCompile(`(?:under )?\b\d+(\.\d+)?\s?(ns|µs|us|ms|s)\b( \(\d+(\.\d+)? [kMGT]?B/s\))?`)

// showsOutput checks that the lines the README shows appear in the real output
// in the same order: a line whole, a line holding "…" up to it (a prefix), a
// lone "…" stands for any number of lines. Durations are not compared.
func showsOutput(shown []string, real string) (missing string, ok bool) {
	lines := strings.Split(durationRE.ReplaceAllString(real, "D"), "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " ")
	}
	at := 0
	for _, s := range shown {
		s = durationRE.ReplaceAllString(s, "D")
		if strings.TrimSpace(s) == "…" {
			continue
		}
		prefix, cut := strings.CutSuffix(s, "…")
		prefix = strings.TrimRight(prefix, " ")
		found := false
		for ; at < len(lines); at++ {
			if (cut && strings.HasPrefix(lines[at], prefix)) || (!cut && lines[at] == s) {
				found = true
				at++
				break
			}
		}
		if !found {
			return s, false
		}
	}
	return "", true
}

// The commands the README shows run on the examples that ship in testdata/,
// exit with the status the README claims, and print what it shows.
func TestReadmeExamples(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the go command is needed to build ckpt: %v", err)
		}
		t.Skipf("the go command is not on PATH (%v): install Go to run the README's examples", err)
	}
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	examples := readmeExamples(t, string(data))
	if len(examples) == 0 {
		t.Fatal("README.md shows no ckpt command")
	}

	// The quick start's set-up block: one command runs ckpt on the shipped
	// example, one runs the tests.
	quick := string(data)
	if i := strings.Index(quick, "## Quick start"); i >= 0 {
		quick = quick[i:]
	}
	if blocks := codeBlocks(quick); len(blocks) == 0 || len(blocks[0]) != 2 ||
		!strings.HasPrefix(blocks[0][0], "go run ./cmd/ckpt ") || !strings.Contains(blocks[0][0], " testdata/example/") ||
		!strings.HasPrefix(blocks[0][1], "go test ./...") {
		t.Errorf("the quick start must open with two set-up commands, `go run ./cmd/ckpt … testdata/example/…` and `go test ./...`")
	}

	bin := filepath.Join(t.TempDir(), "ckpt")
	if out, err := exec.Command(goCmd, "build", "-o", bin, "./cmd/ckpt").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/ckpt: %v\n%s", err, out)
	}
	// Commands run in a directory of their own, where testdata/ is the
	// module's: their outputs (repair's -o) land there, not in the tree.
	work := t.TempDir()
	if err := os.Symlink(filepath.Join(root, "testdata"), filepath.Join(work, "testdata")); err != nil {
		t.Fatal(err)
	}
	for _, e := range examples {
		cmd := exec.Command(bin, e.args...)
		cmd.Dir = work
		if e.goRun {
			cmd = exec.Command(goCmd, append([]string{"run", "./cmd/ckpt"}, e.args...)...)
			cmd.Dir = root
		}
		cmd.Env = append(os.Environ(), "NO_COLOR=1")
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		status := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			status = ee.ExitCode()
		} else if err != nil {
			t.Errorf("%s: %v", e.line, err)
			continue
		}
		if status != e.status {
			t.Errorf("%s: exit status %d, the README says %d\nstdout:\n%s\nstderr:\n%s", e.line, status, e.status, stdout.String(), stderr.String())
			continue
		}
		if missing, ok := showsOutput(e.output, stdout.String()); !ok {
			t.Errorf("%s: the README shows\n  %s\nwhich the command does not print (in that order); it prints:\n%s", e.line, missing, stdout.String())
		}
	}
}
