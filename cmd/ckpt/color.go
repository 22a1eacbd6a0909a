package main

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// isTerminal reports whether w is an *os.File attached to a terminal. Writers
// that are not files (buffers in tests, pipes wrapped by callers) never are.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// noColorEnv reports whether the NO_COLOR convention (https://no-color.org)
// asks for no colour: the variable is set to a non-empty value.
func noColorEnv() bool { return os.Getenv("NO_COLOR") != "" }

// colorModes are the values of every command's --color flag.
const colorModes = "auto, always or never"

// useColor decides whether output to w is coloured. mode is the --color flag:
// "auto" colours only a terminal, "always" and "never" force it. NO_COLOR set to
// anything non-empty turns colour off whatever the mode.
func useColor(mode string, w io.Writer) (bool, error) {
	switch mode {
	case "auto", "":
		return !noColorEnv() && isTerminal(w), nil
	case "always":
		return !noColorEnv(), nil
	case "never":
		return false, nil
	}
	return false, usagef("use --color=auto, --color=always or --color=never", "unknown --color value %q (want %s)", mode, colorModes)
}

// styler wraps text in ANSI SGR sequences when enabled; the zero value prints
// plain text. Style text only after it has been escaped with safeText and padded:
// the sequences have no width.
type styler struct{ on bool }

func (s styler) wrap(code, text string) string {
	if !s.on || text == "" {
		return text
	}
	return fmt.Sprintf("\x1b[%sm%s\x1b[0m", code, text)
}

// Red marks errors.
func (s styler) Red(text string) string { return s.wrap("31", text) }

// BoldRed marks an unhealthy verdict.
func (s styler) BoldRed(text string) string { return s.wrap("1;31", text) }

// Yellow marks warnings.
func (s styler) Yellow(text string) string { return s.wrap("33", text) }

// Green marks a healthy verdict.
func (s styler) Green(text string) string { return s.wrap("32", text) }

// BoldGreen marks a healthy verdict line.
func (s styler) BoldGreen(text string) string { return s.wrap("1;32", text) }

// Bold marks headings.
func (s styler) Bold(text string) string { return s.wrap("1", text) }

// Dim marks secondary text.
func (s styler) Dim(text string) string { return s.wrap("2", text) }

// Severity colours a severity word (or any text) by severity: red for error,
// yellow for warning, dim for info.
func (s styler) Severity(sev, text string) string {
	switch sev {
	case "error":
		return s.Red(text)
	case "warning":
		return s.Yellow(text)
	case "info":
		return s.Dim(text)
	}
	return text
}
