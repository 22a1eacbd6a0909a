package ckpt_test

import (
	"os"
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
