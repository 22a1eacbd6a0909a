package main

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestSafeText(t *testing.T) {
	cases := map[string]string{
		"plain name.weight":        "plain name.weight",
		"héllo 世界":                 "héllo 世界",
		"\x1b[31mred\x1b[0m":       `\x1b[31mred\x1b[0m`,
		"a\nb\rc\td":               `a\nb\rc\td`,
		"bell\x07":                 `bell\x07`,
		"del\x7f":                  `del\x7f`,
		"c1\u009bx":                `c1\u009bx`,
		"rtl\u202eexe":             `rtl\u202eexe`,
		"zw\u200bj":                `zw\u200bj`,
		"bad\xffutf8\xc3":          `bad\xffutf8\xc3`,
		"ls\u2028ps\u2029":         `ls\u2028ps\u2029`,
		"tag\U000E0041":            `tag\U000e0041`,
		"tags\U000E0001\U000E007F": `tags\U000e0001\U000e007f`,
		"bom\ufeff":                `bom\ufeff`,
		"keep \\ backslashes":      "keep \\ backslashes",
	}
	for in, want := range cases {
		if got := safeText(in); got != want {
			t.Errorf("safeText(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSafeTextEscapesReadBack: every rune safeText escapes is written as an
// escape Go's (and Python's) string syntax reads back as that same rune, for
// every code point, so \u takes exactly four hex digits and \U eight.
func TestSafeTextEscapesReadBack(t *testing.T) {
	escaped := 0
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if r >= 0xd800 && r <= 0xdfff || !needsEscape(r) {
			continue
		}
		out := safeText(string(r))
		back, err := strconv.Unquote(`"` + out + `"`)
		if err != nil || back != string(r) {
			t.Fatalf("%U escaped as %q, which reads back as %q (%v)", r, out, back, err)
		}
		if r > 0xffff && (len(out) != 10 || out[:2] != `\U`) {
			t.Fatalf("%U escaped as %q, want \\U and eight hex digits", r, out)
		}
		escaped++
	}
	if escaped < 100 {
		t.Fatalf("only %d runes escaped", escaped)
	}
}

// FuzzSafeText: whatever the input, the output is valid UTF-8 with no control
// or format character, and clean input is unchanged.
func FuzzSafeText(f *testing.F) {
	for _, s := range []string{"", "abc", "\x1b]0;x\x07", "\xff\xfe", "\u202e", "\u009b", "a\u0300"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := safeText(s)
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 out of %q: %q", s, out)
		}
		for _, r := range out {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
				t.Fatalf("control %U left in %q", r, out)
			}
		}
		clean := utf8.ValidString(s)
		for _, r := range s {
			clean = clean && !needsEscape(r)
		}
		if clean && out != s {
			t.Fatalf("clean %q changed to %q", s, out)
		}
	})
}

// FuzzWriteJSON: the JSON written is valid, holds no raw control or format
// character, and decodes to the input (invalid UTF-8 aside, which JSON cannot
// hold and encoding/json replaces by U+FFFD).
func FuzzWriteJSON(f *testing.F) {
	for _, s := range []string{"", "x", "\x1b[2J", "\u009b", "\u202e\U000E0041", "\x7f", "\xff", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var buf bytes.Buffer
		if err := writeJSON(&buf, map[string]string{"k": s}); err != nil {
			t.Fatal(err)
		}
		out := buf.Bytes()
		if out[len(out)-1] != '\n' || bytes.Count(out, []byte("\n")) != 1 {
			t.Fatalf("not one line: %q", out)
		}
		for _, r := range string(out[:len(out)-1]) {
			if needsEscape(r) {
				t.Fatalf("raw %U in %q", r, out)
			}
		}
		var back map[string]string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("invalid JSON %q: %v", out, err)
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); utf8.ValidString(s) && back["k"] != want {
			t.Fatalf("decoded %q, want %q", back["k"], want)
		}
	})
}

func TestTextTable(t *testing.T) {
	tt := textTable{header: []string{"NAME", "N", "NOTE"}, right: map[int]bool{1: true}}
	tt.add("a", "1", "x")
	tt.add("longer", "1234", "")
	var b strings.Builder
	tt.write(&b, nil)
	want := "NAME       N  NOTE\n" +
		"a          1  x\n" +
		"longer  1234\n"
	if b.String() != want {
		t.Errorf("table:\n%q\nwant\n%q", b.String(), want)
	}
	// Styles are applied after padding, so colour does not shift columns.
	st := styler{on: true}
	ct := textTable{}
	ct.addCells(cell{text: "err", style: st.Red}, cell{text: "x"})
	ct.addCells(cell{text: "warning"}, cell{text: "y"})
	b.Reset()
	ct.write(&b, nil)
	if stripANSI(b.String()) != "err      x\nwarning  y\n" {
		t.Errorf("coloured table: %q", b.String())
	}
}

func TestGroupDigits(t *testing.T) {
	for in, want := range map[uint64]string{0: "0", 999: "999", 1000: "1,000", 59725: "59,725", 7615616512: "7,615,616,512", 18446744073709551615: "18,446,744,073,709,551,615"} {
		if got := groupDigits(in); got != want {
			t.Errorf("groupDigits(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestMarkdownEscapes(t *testing.T) {
	if got := mdText("a|b *c* _d_ <x> & [l](u) `e`"); got != `a\|b \*c\* \_d\_ &lt;x&gt; &amp; \[l\](u) \`+"`e\\`" {
		t.Errorf("mdText = %q", got)
	}
	for in, want := range map[string]string{
		"":      "",
		"plain": "`plain`",
		"a`b":   "``a`b``",
		"`x":    "`` `x ``",
		"p|q":   "`p\\|q`",
		"\x1b":  "`\\x1b`",
	} {
		if got := mdCode(in); got != want {
			t.Errorf("mdCode(%q) = %q, want %q", in, got, want)
		}
	}
}
