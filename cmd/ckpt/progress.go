package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/ckpt-tool/ckpt/remote"
)

// byteProgress is a byte-counting progress bar on stderr, shared by every
// command that reads tensor data. It draws only when stderr is a terminal (and
// progress was not turned off), at most every 100 ms; otherwise every method is
// a cheap no-op. The zero value and nil are valid, invisible bars. Add is safe
// to call from several goroutines.
//
// A bar over remote paths (countNetwork) also says, after its label, how many
// bytes arrived over the network since it was made: the bar counts the bytes
// scanned, which for a remote read are not what the network carried (headers,
// parts fetched ahead, retries).
type byteProgress struct {
	mu   sync.Mutex
	bar  *progressbar.ProgressBar
	desc string
	// net, when set, is the traffic so far; described is when the label
	// last said it.
	net       func() int64
	described time.Time
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
	return drawnProgress(stderr, total, desc)
}

// drawnProgress is a bar drawn on w whatever w is.
func drawnProgress(w io.Writer, total int64, desc string) *byteProgress {
	desc = safeText(desc)
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetVisibility(true),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionThrottle(progressThrottle),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionUseANSICodes(true),
	)
	return &byteProgress{bar: bar, desc: desc}
}

// countNetwork makes the bar's label say the bytes received over the network
// from now on (remote.Transferred), when remote is true; it returns p.
func (p *byteProgress) countNetwork(remote bool) *byteProgress {
	if p == nil || p.bar == nil || !remote {
		return p
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.net = networkCounter()
	p.bar.Describe(networkLabel(p.desc, 0))
	p.described = time.Now()
	return p
}

// networkCounter returns the bytes received over the network since it was
// called.
func networkCounter() func() int64 {
	before := remote.Transferred().Bytes
	return func() int64 { return remote.Transferred().Bytes - before }
}

// networkLabel is a bar's label followed by the bytes received over the
// network: "scan URL, 12.3 MB over the network".
func networkLabel(desc string, n int64) string {
	return desc + ", " + humanBytes(max(n, 0)) + " over the network"
}

// humanBytes writes n bytes with a decimal unit and three significant digits
// at most, as the bar writes its own counts.
func humanBytes(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	v, u := float64(n), 0
	for v >= 1000 && u < len(units)-1 {
		v /= 1000
		u++
	}
	switch {
	case u == 0:
		return fmt.Sprintf("%d B", n)
	case v < 10:
		return fmt.Sprintf("%.2f %s", v, units[u])
	case v < 100:
		return fmt.Sprintf("%.1f %s", v, units[u])
	}
	return fmt.Sprintf("%.0f %s", v, units[u])
}

// Add records n more bytes read.
func (p *byteProgress) Add(n int64) {
	if p == nil || p.bar == nil || n <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.net != nil && time.Since(p.described) >= progressThrottle {
		// The label changes at the bar's pace: Describe redraws.
		p.bar.Describe(networkLabel(p.desc, p.net()))
		p.described = time.Now()
	}
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
