package main

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/internal/hostile"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// rawHeaderFile writes a safetensors file whose header is the given text.
func rawHeaderFile(t *testing.T, path, header string, data int) {
	t.Helper()
	b := make([]byte, 8, 8+len(header)+data)
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	b = append(append(b, header...), make([]byte, data)...)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestMessagesEscaped: a header whose dtype holds an ESC colour sequence and a
// NUL reaches no terminal raw, from any command, on stdout or stderr (repair
// used to echo it in its error).
func TestMessagesEscaped(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.safetensors")
	rawHeaderFile(t, bad, `{"a":{"dtype":"F\u001b[31mRED\u0000","shape":[4],"data_offsets":[0,16]}}`, 16)
	good := filepath.Join(dir, "good.safetensors")
	if err := hostile.WriteHealthy(good); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"inspect", bad}, {"scan", "--no-progress", bad}, {"diff", "--no-progress", good, bad},
		{"bisect", "--no-progress", good, bad},
		{"repair", "--no-progress", bad, "--from", good, "-o", filepath.Join(dir, "out.safetensors")},
		{"repair", "--no-progress", good, "--from", bad, "-o", filepath.Join(dir, "out2.safetensors")},
	} {
		r := cliRun(t, args...)
		all := r.stdout + r.stderr
		if strings.ContainsAny(all, "\x1b\x00") {
			t.Errorf("%v: a raw control character reached the output:\n%q", args, all)
		}
		if args[0] == "inspect" || args[0] == "scan" || strings.HasPrefix(args[2], bad) {
			if !strings.Contains(all, `F\x1b[31mRED\x00`) {
				t.Errorf("%v: the dtype is not shown escaped:\n%s", args, all)
			}
		}
	}
}

// TestMessageBOM: a header starting with a UTF-8 byte-order mark says so.
func TestMessageBOM(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bom.safetensors")
	rawHeaderFile(t, p, "\xef\xbb\xbf{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16)
	r := cliRun(t, "inspect", p)
	r.wantCode(t, 1)
	if !strings.Contains(r.stdout, "the header starts with a UTF-8 byte-order mark") || strings.Contains(r.stdout, "invalid character") {
		t.Errorf("the finding does not name the byte-order mark:\n%s", r.stdout)
	}
}

// TestRepairGoodUnreadable: when GOOD cannot be read, repair says so once and
// why, instead of reporting every tensor BAD needs as "not in GOOD".
func TestRepairGoodUnreadable(t *testing.T) {
	root := t.TempDir()
	bad := cliTiny(t, 1, "F32")
	for _, name := range []string{"model.norm.weight", "lm_head.weight", "model.embed_tokens.weight"} {
		if err := synth.SetValues(filepath.Join(bad, "model.safetensors"), name, map[int]float64{0: math.NaN()}); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{"text": "AAAAAAAAAAAAAAAA", "empty": ""} {
		good := filepath.Join(root, name)
		if err := os.MkdirAll(good, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(good, "model.safetensors"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, strategy := range []string{"tensors", "all"} {
			r := cliRun(t, "repair", "--no-progress", bad, "--from", good, "-o", filepath.Join(root, "out-"+name), "--strategy", strategy)
			r.wantCode(t, 2)
			if n := strings.Count(r.stderr, "GOOD cannot be read"); n != 1 {
				t.Errorf("%s, %s: says %d times that GOOD cannot be read:\n%s", name, strategy, n, r.stderr)
			}
			if strings.Contains(r.stderr, "not in GOOD") || !strings.Contains(r.stderr, filepath.Join(good, "model.safetensors")) {
				t.Errorf("%s, %s: does not name GOOD's unreadable file once:\n%s", name, strategy, r.stderr)
			}
		}
	}
}
