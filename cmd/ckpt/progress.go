package main

import (
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// byteProgress is a byte-counting progress bar on stderr, shared by every
// command that reads tensor data. It draws only when stderr is a terminal (and
// progress was not turned off), at most every 100 ms; otherwise every method is
// a cheap no-op. The zero value and nil are valid, invisible bars. Add is safe
// to call from several goroutines.
type byteProgress struct {
	mu  sync.Mutex
	bar *progressbar.ProgressBar
}

// progressThrottle bounds how often the bar redraws: each redraw of a bar
// writing to a file also fsyncs it.
const progressThrottle = 100 * time.Millisecond

// newByteProgress returns a bar for total bytes labelled desc, drawn on stderr
// when enabled is true and stderr is a terminal. A total of 0 (nothing to read)
// gives an invisible bar.
func newByteProgress(stderr io.Writer, total int64, desc string, enabled bool) *byteProgress {
	if !enabled || total <= 0 || !isTerminal(stderr) {
		return &byteProgress{}
	}
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetVisibility(true),
		progressbar.OptionSetDescription(safeText(desc)),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionThrottle(progressThrottle),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionUseANSICodes(true),
	)
	return &byteProgress{bar: bar}
}

// Add records n more bytes read.
func (p *byteProgress) Add(n int64) {
	if p == nil || p.bar == nil || n <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.bar.Add64(n) // a bar that cannot draw must not stop the work
}

// Visible reports whether the bar draws anything.
func (p *byteProgress) Visible() bool { return p != nil && p.bar != nil }

// Done removes the bar from the terminal; call it before printing results.
func (p *byteProgress) Done() {
	if p == nil || p.bar == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.bar.Finish()
	_ = p.bar.Clear()
	p.bar = nil
}
