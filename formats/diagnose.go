package formats

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

const lfsPrefix = "version https://git-lfs"

// lfsPointer returns a description when the file is a Git LFS pointer, "" otherwise.
func lfsPointer(r io.ReaderAt, size int64) string {
	if size > 1024 {
		return ""
	}
	buf := make([]byte, size)
	n, _ := r.ReadAt(buf, 0)
	buf = buf[:n]
	if !bytes.HasPrefix(buf, []byte(lfsPrefix)) {
		return ""
	}
	objSize := ""
	for _, line := range strings.Split(string(buf), "\n") {
		if v, ok := strings.CutPrefix(line, "size "); ok {
			if b, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				objSize = fmt.Sprintf(" to a %s object", HumanBytes(b))
			}
		}
	}
	return fmt.Sprintf("file is a Git LFS pointer%s, not the weights: the repository was cloned without git-lfs (run `git lfs pull`)", objSize)
}

// magics are the openings of files often saved or downloaded under a
// .safetensors name by mistake.
var magics = []struct{ prefix, what string }{
	{"PK\x03\x04", "a ZIP archive (a PyTorch .bin/.pt checkpoint saved under the wrong name?)"},
	{"\x80\x02", "a Python pickle (a PyTorch .bin/.pt checkpoint saved under the wrong name?)"},
	{"\x80\x04", "a Python pickle (a PyTorch .bin/.pt checkpoint saved under the wrong name?)"},
	{"GGUF", "a GGUF file, not safetensors"},
	{"\x89HDF", "an HDF5 file (a Keras .h5 checkpoint?), not safetensors"},
	{"\x1f\x8b", "gzip-compressed data, not safetensors"},
}

// describeContent says, for a file that is not safetensors, what it seems to hold.
func describeContent(head []byte) string {
	if len(head) == 0 {
		return " (empty)"
	}
	for _, m := range magics {
		if bytes.HasPrefix(head, []byte(m.prefix)) {
			return "; it looks like " + m.what
		}
	}
	printable := true
	for _, b := range head {
		if (b < 0x20 && b != '\n' && b != '\r' && b != '\t') || b >= 0x7F {
			printable = false
			break
		}
	}
	if !printable {
		return ""
	}
	text := strings.TrimSpace(string(head))
	if text == "" {
		return "; it holds only whitespace, not safetensors"
	}
	hint := ""
	switch lower := strings.ToLower(text); {
	case strings.HasPrefix(lower, "<!doctype html") || strings.HasPrefix(lower, "<html"):
		hint = " — an HTML page (a failed download or a login page?), not weights"
	case strings.HasPrefix(text, "{"):
		hint = " — JSON without the 8-byte length prefix"
	case strings.Contains(text, "/") && !strings.ContainsAny(text, "{} \n"):
		hint = " — a symlink checked out as a plain file? It names a path, not weights"
	}
	if len(text) > 60 {
		text = text[:60] + "..."
	}
	return fmt.Sprintf("; it holds text, not safetensors: %s%s", strconv.Quote(text), hint)
}

// HumanBytes formats a byte count with binary-free decimal units (kB, MB, GB).
func HumanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
