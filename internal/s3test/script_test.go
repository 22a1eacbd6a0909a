package s3test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ckpt-tool/ckpt/internal/testenv"
)

// TestScriptStartIsIdempotentAndStopsWithItsOwner runs scripts/s3-test-server.sh
// as Start does, with a process of its own as the owner: a second start finds
// the same server, and killing the owner stops the server and deletes its
// directory.
func TestScriptStartIsIdempotentAndStopsWithItsOwner(t *testing.T) {
	t.Parallel()
	script := filepath.Join(testenv.ModuleRoot(t), "scripts", "s3-test-server.sh")
	owner := exec.Command("sleep", "600")
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { owner.Process.Kill(); owner.Wait() })
	dir, err := os.MkdirTemp("", "ckpt-test-s3-script-")
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command("bash", append([]string{script}, args...)...)
		cmd.Env = append(os.Environ(), "CKPT_TEST_S3_OWNER="+strconv.Itoa(owner.Process.Pid))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			err = errors.Join(err, errors.New(stderr.String()))
		}
		return string(out), err
	}
	t.Cleanup(func() {
		if _, err := run("stop", dir); err != nil {
			t.Errorf("stop: %v", err)
		}
	})

	first, err := run("start", dir)
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 3 {
		os.Remove(dir)
		testenv.Missing(t, "the S3 test server is not available ("+err.Error()+")", "build it with scripts/s3-test-server.sh build")
	}
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	pid, err := os.ReadFile(filepath.Join(dir, "weed.pid"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := run("start", dir)
	if err != nil {
		t.Fatalf("second start: %v", err)
	}
	if second != first {
		t.Errorf("a second start printed\n%s\nthe first\n%s", second, first)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "weed.pid")); string(again) != string(pid) {
		t.Errorf("a second start replaced the server (pid %s, then %s)", pid, again)
	}

	var s Server
	for _, line := range strings.Split(strings.TrimSpace(first), "\n") {
		k, v, _ := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		switch k {
		case "AWS_ENDPOINT_URL":
			s.Endpoint = v
		case "AWS_ACCESS_KEY_ID":
			s.AccessKey = v
		case "AWS_SECRET_ACCESS_KEY":
			s.SecretKey = v
		case "AWS_REGION":
			s.Region = v
		}
	}
	if _, err := s.Client().ListBuckets(context.Background(), nil); err != nil {
		t.Fatalf("a signed request to %s with the printed key pair: %v", s.Endpoint, err)
	}
	u, err := url.Parse(s.Endpoint)
	if err != nil || u.Hostname() != "127.0.0.1" {
		t.Errorf("endpoint %q: want http://127.0.0.1:PORT", s.Endpoint)
	}

	owner.Process.Kill()
	owner.Wait()
	weed, _ := strconv.Atoi(strings.TrimSpace(string(pid)))
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, statErr := os.Stat(dir)
		alive := running(weed)
		if os.IsNotExist(statErr) && !alive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after its owner exited: server alive %v, %s still there %v", alive, dir, statErr == nil)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if c, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after the server stopped", u.Host)
	}
}

// running reports whether process pid exists and is not a zombie (a killed
// server whose parent exited is reaped only if PID 1 reaps).
func running(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the command name in parentheses: "PID (comm) S ...".
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}
