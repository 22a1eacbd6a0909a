package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
)

// Markdown rendering, for reports posted as pull-request comments. Strings from
// files are hostile here too: they are escaped so they cannot add markup, links
// or HTML to the comment.

// markdownMaxFindings bounds the findings table (a comment has a size limit).
const markdownMaxFindings = 100

// mdText escapes s for Markdown running text or a table cell: control
// characters as in safeText, Markdown punctuation backslash-escaped, & < >
// as HTML entities.
func mdText(s string) string {
	s = safeText(s)
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '\\', '`', '*', '_', '[', ']', '|', '#', '~':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// mdCode renders s as an inline code span that is safe in a table cell: the
// backtick fence is longer than any run of backticks inside, and | is escaped
// (GitHub tables split cells on it even inside code).
func mdCode(s string) string {
	s = safeText(s)
	if s == "" {
		return ""
	}
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	s = strings.ReplaceAll(s, "|", `\|`)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return fence + s + fence
}

// writeMarkdownFindings writes findings as a Markdown table (at most
// markdownMaxFindings rows, then a line saying how many were left out).
func writeMarkdownFindings(w io.Writer, findings []inspect.Finding, shorten func(string) string) {
	fmt.Fprintln(w, "| severity | check | tensor | file | message |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- |")
	for i, f := range findings {
		if i == markdownMaxFindings {
			break
		}
		file := f.File
		if shorten != nil {
			file = shorten(file)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", mdText(f.Severity), mdText(f.Check), mdCode(f.Tensor), mdCode(file), mdText(f.Message))
	}
	if len(findings) > markdownMaxFindings {
		fmt.Fprintf(w, "\n… and %d more findings (run `ckpt scan` for all of them).\n", len(findings)-markdownMaxFindings)
	}
}

// writeScanMarkdown prints one scan as Markdown: a verdict line, the findings
// table and a per-file summary.
func writeScanMarkdown(w io.Writer, r *inspect.Result) {
	healthy, text := scanVerdictText(r)
	mark := "✅ **healthy**"
	if !healthy {
		mark = "❌ **unhealthy**"
	}
	fmt.Fprintf(w, "**ckpt scan** %s: %s — %s\n\n", mdCode(r.Path), mark, mdText(text))
	short := fileShortener(r.Checkpoint)
	if len(r.Findings) > 0 {
		writeMarkdownFindings(w, r.Findings, func(p string) string {
			if s := short(p); s != "" {
				return s
			}
			return filepath.Base(p)
		})
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "| file | bytes | tensors | non-finite tensors | errors | warnings |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: |")
	nonfinite := map[string]int{}
	for _, t := range r.Tensors {
		if t.NonFinite() > 0 {
			nonfinite[t.File]++
		}
	}
	errs, warns := map[string]int{}, map[string]int{}
	for _, fd := range r.Findings {
		switch fd.Severity {
		case "error":
			errs[fd.File]++
		case "warning":
			warns[fd.File]++
		}
	}
	for _, f := range r.Files {
		name := short(f.Path)
		if name == "" {
			name = filepath.Base(f.Path)
		}
		fmt.Fprintf(w, "| %s | %s | %d | %d | %d | %d |\n", mdCode(name), formats.HumanBytes(f.Bytes), f.Tensors, nonfinite[f.Path], errs[f.Path], warns[f.Path])
	}
}
