package main

import (
	"bytes"
	"context"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/synth"
	"github.com/ckpt-tool/ckpt/internal/testenv"
)

// chromiumPath finds a headless-capable Chromium; without one the test fails
// in CI and is skipped elsewhere.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Missing(t, "chromium is not installed (the HTML report is rendered headless)",
		"run scripts/install-test-deps.sh as root (it installs Debian's chromium)")
	return ""
}

// runChromium runs headless Chromium on a local file with the given extra
// flags, in its own process group (killed whole on timeout), and returns its
// stdout and stderr.
func runChromium(t *testing.T, page string, extra ...string) (string, string) {
	t.Helper()
	bin := chromiumPath(t)
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}
	args = append(args, extra...)
	args = append(args, "file://"+page)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", extra, err, errb.String())
	}
	return out.String(), errb.String()
}

// checkPageLoads loads the page headless: the DOM must say the page's script
// ran to the end and recorded no error, and the browser must log no console
// message (a blocked external load or a script error would be one).
func checkPageLoads(t *testing.T, page string) {
	t.Helper()
	dom, logs := runChromium(t, page, "--enable-logging=stderr", "--v=0", "--dump-dom")
	if !strings.Contains(dom, `data-ready="1"`) {
		t.Errorf("the page's script did not run to the end; DOM starts %q", dom[:min(300, len(dom))])
	}
	if m := regexp.MustCompile(`<html[^>]*data-errors="[^"]*"`).FindString(dom); m != "" {
		t.Errorf("script errors recorded: %s", m)
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "CONSOLE") || strings.Contains(line, "Uncaught") || strings.Contains(line, "Refused to") {
			t.Errorf("browser console: %s", line)
		}
	}
}

// nonWhiteFraction is the share of a PNG's pixels that are not (nearly) white.
func nonWhiteFraction(t *testing.T, path string) float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	n, total := 0, 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			total++
			if r < 0xF000 || g < 0xF000 || bl < 0xF000 {
				n++
			}
		}
	}
	return float64(n) / float64(total)
}

func TestBisectReportInChromium(t *testing.T) {
	chromiumPath(t)
	run, truth := writeRun(t, synth.RunOptions{Seed: 21, Checkpoints: 12, JumpStep: 450, NaNStep: 1050})
	page := filepath.Join(t.TempDir(), "report.html")
	r := cliRun(t, "bisect", "--report", page, run)
	r.wantCode(t, 1)
	if !strings.Contains(r.stdout, "report written to "+page) {
		t.Errorf("stdout does not name the report:\n%s", r.stdout)
	}
	data, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	html := string(data)
	// Self-contained: no URL but the SVG namespace, no src or href attribute.
	for _, u := range regexp.MustCompile(`https?://[^"' )<>]+`).FindAllString(html, -1) {
		if u != "http://www.w3.org/2000/svg" {
			t.Errorf("external URL in the report: %s", u)
		}
	}
	if m := regexp.MustCompile(`\s(src|href)\s*=`).FindString(html); m != "" {
		t.Errorf("the report loads something: %q", m)
	}
	if n := strings.Count(html, "<svg"); n < 5 {
		t.Errorf("%d SVG plots, want loss, grad_norm, learning rate, update and heatmap", n)
	}
	for _, want := range []string{"checkpoint-" + strconv.Itoa(truth.FirstUnhealthy), "lr_jump", "Culprit tensors", "drift onset"} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	checkPageLoads(t, page)
	shot := filepath.Join(t.TempDir(), "shot.png")
	runChromium(t, page, "--screenshot="+shot, "--window-size=1200,900", "--hide-scrollbars")
	if f := nonWhiteFraction(t, shot); f < 0.05 {
		t.Errorf("screenshot is nearly blank: %.1f%% of pixels not white", 100*f)
	} else {
		t.Logf("screenshot: %.1f%% of pixels not white", 100*f)
	}

	// The report is never written over an existing file without --force.
	before, _ := os.ReadFile(page)
	cliRun(t, "bisect", "--report", page, run).wantCode(t, 2)
	if after, _ := os.ReadFile(page); !bytes.Equal(before, after) {
		t.Errorf("an existing report was replaced without --force")
	}
	cliRun(t, "bisect", "--force", "--no-drift", "--report", page, run).wantCode(t, 1)
	if after, _ := os.ReadFile(page); bytes.Equal(before, after) {
		t.Errorf("--force did not replace the report")
	}
}

// TestReportEscapesHostileNames: tensor names are hostile; in the report they
// are text, never markup.
func TestReportEscapesHostileNames(t *testing.T) {
	dir := t.TempDir()
	evil := `<img src=x onerror="document.title='pwned'">` + "\x1b[31m"
	specs := []formats.TensorSpec{{Name: evil, DType: formats.F32, Shape: []uint64{4}}, {Name: "ok.weight", DType: formats.F32, Shape: []uint64{4}}}
	a, b := filepath.Join(dir, "checkpoint-1.safetensors"), filepath.Join(dir, "checkpoint-2.safetensors")
	writeSafetensors(t, a, specs, nil)
	writeSafetensors(t, b, specs, nil)
	if err := synth.SetValues(b, evil, map[int]float64{2: math.NaN()}); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(dir, "r.html")
	r := cliRun(t, "bisect", "--report", page, a, b)
	r.wantCode(t, 1)
	data, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	html := string(data)
	if strings.Contains(html, "<img") || strings.Contains(html, "\x1b") {
		t.Errorf("hostile tensor name reached the page as markup or raw control characters")
	}
	if !strings.Contains(html, "&lt;img src=x") {
		t.Errorf("the culprit's name is missing from the page")
	}
	if _, err := exec.LookPath("chromium"); err == nil {
		checkPageLoads(t, page)
	}
}
