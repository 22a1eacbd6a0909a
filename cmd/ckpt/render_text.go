package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ckpt-tool/ckpt/inspect"
)

// Text rendering shared by every command: escaping of hostile strings, aligned
// tables, findings lists.

// safeText makes a string from a file (tensor name, metadata, path, message) safe
// to print on a terminal: control characters (C0, DEL, C1), Unicode format
// characters (bidirectional overrides, zero-width characters) and invalid UTF-8
// are replaced by visible escapes (\n, \x1b, \u202e, \U000e0041, \xff), so no file can move
// the cursor, change colours, set the window title or reorder what is shown.
// Printable text, including non-ASCII letters, passes through unchanged.
func safeText(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || needsEscape(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80 && needsEscape(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case needsEscape(r) && r > 0xffff:
			// Beyond the Basic Multilingual Plane: eight hex digits, as Go and
			// Python write it, so U+E0041 is not read as U+E004 then "1".
			fmt.Fprintf(&b, `\U%08x`, r)
		case needsEscape(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// needsEscape reports whether r must not reach a terminal raw: a control
// character or an invisible format character (Unicode category Cf, which holds
// the bidirectional overrides and isolates).
func needsEscape(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029'
}

// textWidth is the display width used for alignment: one column per rune.
func textWidth(s string) int { return utf8.RuneCountInString(s) }

// truncateText shortens s to at most max runes, ending it with "…" when cut.
func truncateText(s string, max int) string {
	if max <= 1 || textWidth(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

// cell is one table cell: its plain text (already escaped) and an optional
// style applied after padding.
type cell struct {
	text  string
	style func(string) string
}

// textTable is an aligned plain-text table. Columns listed in right are
// right-aligned (numbers); the last column is never padded.
type textTable struct {
	header []string
	rows   [][]cell
	right  map[int]bool
}

// add appends a row of unstyled cells.
func (t *textTable) add(texts ...string) {
	row := make([]cell, len(texts))
	for i, s := range texts {
		row[i] = cell{text: s}
	}
	t.rows = append(t.rows, row)
}

// addCells appends a row of cells.
func (t *textTable) addCells(cells ...cell) { t.rows = append(t.rows, cells) }

// write renders the table to w with two spaces between columns; the header is
// styled with hdr (which may be nil).
func (t *textTable) write(w io.Writer, hdr func(string) string) {
	n := len(t.header)
	for _, r := range t.rows {
		n = max(n, len(r))
	}
	widths := make([]int, n)
	for i, h := range t.header {
		widths[i] = textWidth(h)
	}
	for _, r := range t.rows {
		for i, c := range r {
			widths[i] = max(widths[i], textWidth(c.text))
		}
	}
	line := func(cells []cell) {
		var b strings.Builder
		for i, c := range cells {
			text := c.text
			pad := widths[i] - textWidth(text)
			if i == len(cells)-1 && !t.right[i] {
				pad = 0
			}
			if t.right[i] {
				text = strings.Repeat(" ", pad) + text
			} else {
				text += strings.Repeat(" ", pad)
			}
			if c.style != nil {
				text = c.style(text)
			}
			if i > 0 {
				b.WriteString("  ")
			}
			b.WriteString(text)
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	if len(t.header) > 0 {
		cells := make([]cell, len(t.header))
		for i, h := range t.header {
			cells[i] = cell{text: h, style: hdr}
		}
		line(cells)
	}
	for _, r := range t.rows {
		line(r)
	}
}

// writeFindings prints findings as "severity  check  where: message" lines,
// one per finding, every string escaped, at most maxSameKind of each kind (then
// one line counting the rest). shorten maps a finding's file to the name shown
// before the message ("" to show none); nil shows the path as is.
func writeFindings(w io.Writer, st styler, findings []inspect.Finding, shorten func(string) string) {
	kinds := make([]string, len(findings))
	for i, f := range findings {
		kinds[i] = messageKind(f.Message, f.Tensor, f.Severity, f.Check)
	}
	limit := newSameKindCap(kinds)
	t := textTable{}
	for i, f := range findings {
		ok, rest := limit.show(kinds[i])
		if !ok {
			continue
		}
		t.addCells(
			cell{text: safeText(f.Severity), style: func(s string) string { return st.Severity(f.Severity, s) }},
			cell{text: safeText(f.Check)},
			cell{text: findingText(f, shorten)},
		)
		if rest > 0 {
			t.addCells(cell{}, cell{}, cell{text: moreOfTheSameKind(rest)})
		}
	}
	t.write(w, nil)
}

// findingText is a finding's message with its location, escaped: the file
// (unless the message already starts with it; shortened by shorten when not nil)
// and the tensor (unless the message names it) before the message.
func findingText(f inspect.Finding, shorten func(string) string) string {
	msg := f.Message
	where := ""
	if f.File != "" && !strings.HasPrefix(msg, f.File) {
		file := f.File
		if shorten != nil {
			file = shorten(file)
		}
		if file != "" {
			where = file + ": "
		}
	}
	if f.Tensor != "" && !strings.Contains(msg, strconv.Quote(f.Tensor)) {
		where += "tensor " + strconv.Quote(f.Tensor) + ": "
	}
	return safeText(where + msg)
}

// plural returns "1 tensor" or "3 tensors".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// groupDigits formats n with thousands separators: 1234567 → "1,234,567".
func groupDigits(n uint64) string {
	s := strconv.FormatUint(n, 10)
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	lead := len(s) % 3
	if lead > 0 {
		b.WriteString(s[:lead])
	}
	for i := lead; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// shapeText formats a shape as "[4096 11008]" ("[]" for a scalar).
func shapeText(shape []uint64) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = strconv.FormatUint(d, 10)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// countSeverities counts error and warning findings.
func countSeverities(findings []inspect.Finding) (errs, warns int) {
	errs, warns, _ = countAll(findings)
	return errs, warns
}

// countAll counts error, warning and info findings.
func countAll(findings []inspect.Finding) (errs, warns, infos int) {
	for _, f := range findings {
		switch f.Severity {
		case "error":
			errs++
		case "warning":
			warns++
		case "info":
			infos++
		}
	}
	return errs, warns, infos
}

// findingCounts says "2 errors, 1 warning, 1 note" (info findings are notes),
// leaving out zero counts; "" when there is no finding.
func findingCounts(findings []inspect.Finding) string {
	errs, warns, infos := countAll(findings)
	var parts []string
	if errs > 0 {
		parts = append(parts, plural(errs, "error"))
	}
	if warns > 0 {
		parts = append(parts, plural(warns, "warning"))
	}
	if infos > 0 {
		parts = append(parts, plural(infos, "note"))
	}
	return strings.Join(parts, ", ")
}

// durationText formats how long a step took, for people: "under 1ms", "35ms",
// "1.24s".
func durationText(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return "under 1ms"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}
