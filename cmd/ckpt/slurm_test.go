package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-tool/ckpt/internal/synth"
	"github.com/ckpt-tool/ckpt/internal/testenv"
)

// slurmCluster starts the one-node Slurm cluster of
// scripts/slurm-test-cluster.sh in a temporary directory, stops it when the
// test ends, and returns the environment its commands need (SLURM_CONF).
// Without slurm-wlm and munge, or without root, the test is skipped, and fails
// when CI=true.
func slurmCluster(t testing.TB) []string {
	t.Helper()
	missing := func(why string) {
		t.Helper()
		msg := why + "; install slurm-wlm and munge with sudo scripts/install-test-deps.sh and run the test as root"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	for _, b := range []string{"slurmctld", "slurmd", "munged", "sbatch", "squeue"} {
		if _, err := exec.LookPath(b); err != nil {
			if _, err := os.Stat(filepath.Join("/usr/sbin", b)); err != nil {
				missing(b + " is not installed")
			}
		}
	}
	if os.Geteuid() != 0 {
		missing("the test cluster's daemons must run as root")
	}
	script := filepath.Join(testenv.ModuleRoot(t), "scripts", "slurm-test-cluster.sh")
	dir := t.TempDir()
	port := freePortPair(t)
	env := append(os.Environ(), "SLURM_TEST_PORT="+strconv.Itoa(port), "PATH="+os.Getenv("PATH")+":/usr/sbin")
	t.Cleanup(func() {
		cmd := exec.Command("bash", script, "stop", dir)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("stopping the Slurm test cluster: %v\n%s", err, out)
		}
	})
	cmd := exec.Command("bash", script, "start", dir)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("starting the Slurm test cluster: %v\n%s", err, out)
	}
	return append(env, "SLURM_CONF="+filepath.Join(dir, "slurm.conf"))
}

// freePortPair finds a port p such that p and p+1 can be listened on
// (slurmctld's and slurmd's).
func freePortPair(t testing.TB) int {
	t.Helper()
	for p := 20000 + os.Getpid()%20000; p < 60000; p += 2 {
		a, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		b, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+1))
		a.Close()
		if err != nil {
			continue
		}
		b.Close()
		return p
	}
	t.Fatal("no two free ports for the Slurm test cluster")
	return 0
}

// slurmRun runs a Slurm client command with the cluster's environment.
func slurmRun(t testing.TB, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// slurmWait waits until every task of array job id has ended and returns their
// states.
func slurmWait(t testing.TB, env []string, id string, limit time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		out := strings.Fields(slurmRun(t, env, "squeue", "-h", "-t", "all", "-j", id, "-o", "%T"))
		done := len(out) > 0
		for _, s := range out {
			if s == "PENDING" || s == "RUNNING" || s == "CONFIGURING" || s == "COMPLETING" {
				done = false
			}
		}
		if done {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s not done after %v: %v", id, limit, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSlurmArrayScan: on a one-node Slurm cluster an `sbatch --array=0-3` job
// scans a 0.5B-shaped checkpoint (with an outlier), one part per task, and
// ckpt merge prints exactly the JSON one ckpt scan prints.
func TestSlurmArrayScan(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the Slurm array test writes a 1 GB checkpoint")
	}
	env := slurmCluster(t)
	ckpt, err := exec.LookPath("ckpt") // this test binary, as TestMain puts it on PATH
	if err != nil {
		t.Fatalf("ckpt not on PATH: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "checkpoint-100")
	if err := synth.WriteCheckpoint(dir, synth.Options{Arch: synth.Qwen2_0_5B, Seed: 3, Shards: 2}); err != nil {
		t.Fatal(err)
	}
	if err := synth.ScaleTensor(dir, "model.layers.5.mlp.down_proj.weight", 300); err != nil {
		t.Fatal(err)
	}
	whole := cliRun(t, "scan", "--json", "--no-progress", dir)
	whole.wantCode(t, 1)

	out := t.TempDir()
	parts := slurmArrayScan(t, env, ckpt, dir, out)
	got := cliRun(t, append([]string{"merge", "--json"}, parts...)...)
	got.wantCode(t, 1)
	if got.stdout != whole.stdout {
		t.Fatalf("merge of the Slurm array's parts differs from one scan:\nmerge: %.2000s\nscan:  %.2000s", got.stdout, whole.stdout)
	}
	if !strings.Contains(got.stdout, "model.layers.5.mlp.down_proj.weight") {
		t.Error("the merged report does not name the outlier")
	}
}

// slurmArrayScan submits the array job of docs/cluster.md (4 tasks, each
// `ckpt scan --part $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`) scanning
// checkpoint into out, waits for it and returns the part files.
func slurmArrayScan(t testing.TB, env []string, ckpt, checkpoint, out string) []string {
	t.Helper()
	job := filepath.Join(out, "scan.sbatch")
	os.WriteFile(job, []byte(fmt.Sprintf(`#!/bin/bash
#SBATCH --job-name=ckpt-scan
#SBATCH --array=0-3
#SBATCH --output=%[1]s/part-%%a.json
#SBATCH --error=%[1]s/part-%%a.err
exec %[2]q scan --json --no-progress --part "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT" %[3]q
`, out, ckpt, checkpoint)), 0o755)
	id := strings.TrimSpace(slurmRun(t, env, "sbatch", "--parsable", job))
	states := slurmWait(t, env, id, 60*time.Second)
	var parts []string
	for k := range 4 {
		parts = append(parts, filepath.Join(out, fmt.Sprintf("part-%d.json", k)))
	}
	for _, s := range states {
		if s != "COMPLETED" {
			var logs []string
			for k := range 4 {
				e, _ := os.ReadFile(filepath.Join(out, fmt.Sprintf("part-%d.err", k)))
				logs = append(logs, string(e))
			}
			t.Fatalf("array job %s: task states %v\n%s", id, states, strings.Join(logs, "\n"))
		}
	}
	return parts
}

// BenchmarkSlurmArrayOverhead measures what splitting a scan of a 0.5B-shaped
// checkpoint into a 4-task Slurm array job on this one machine costs over one
// process: submission, scheduling, four processes each opening the checkpoint,
// and the merge. Reported: one-s (ckpt scan --json), slurm-s (sbatch until
// every task ended, then ckpt merge --json) and overhead-s, per iteration,
// with the page cache warm.
func BenchmarkSlurmArrayOverhead(b *testing.B) {
	env := slurmCluster(b)
	ckpt, err := exec.LookPath("ckpt")
	if err != nil {
		b.Fatalf("ckpt not on PATH: %v", err)
	}
	dir := filepath.Join(b.TempDir(), "checkpoint-100")
	if err := synth.WriteCheckpoint(dir, synth.Options{Arch: synth.Qwen2_0_5B, Seed: 3, Shards: 2}); err != nil {
		b.Fatal(err)
	}
	run := func(args ...string) time.Duration {
		start := time.Now()
		cmd := exec.Command(ckpt, args...)
		if out, err := cmd.Output(); err != nil && len(out) == 0 {
			b.Fatalf("ckpt %v: %v", args, err)
		}
		return time.Since(start)
	}
	run("scan", "--json", "--no-progress", dir) // warm the page cache
	var one, split time.Duration
	b.ResetTimer()
	for range b.N {
		one += run("scan", "--json", "--no-progress", dir)
		start := time.Now()
		parts := slurmArrayScan(b, env, ckpt, dir, b.TempDir())
		run(append([]string{"merge", "--json"}, parts...)...)
		split += time.Since(start)
	}
	b.ReportMetric(one.Seconds()/float64(b.N), "one-s")
	b.ReportMetric(split.Seconds()/float64(b.N), "slurm-s")
	b.ReportMetric((split-one).Seconds()/float64(b.N), "overhead-s")
}
