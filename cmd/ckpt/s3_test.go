package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/internal/s3test"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// End-to-end tests against a real S3-compatible server (internal/s3test):
// checkpoints uploaded with signed PUTs are read by s3:// paths, through the
// standard credential chain and AWS_ENDPOINT_URL, and every command says what
// it says of the same files on disk.

func TestS3CommandsMatchLocal(t *testing.T) {
	s := s3test.S3(t)
	s.Setenv(t)
	root := remoteFixtures(t)
	run := filepath.Join(root, "run")
	truth, err := synth.WriteRunTruth(run, synth.RunOptions{Seed: 8})
	if err != nil {
		t.Fatal(err)
	}
	bad, good := fmt.Sprintf("checkpoint-%d", truth.FirstUnhealthy), fmt.Sprintf("checkpoint-%d", truth.LastHealthy)
	trainer := filepath.Join(root, "trainer")
	copySharedTree(t, trainerCheckpoints(t), trainer)
	url := s.Upload(t, root, "models")

	t.Run("scan", func(t *testing.T) {
		sameAsLocal(t, "scan", filepath.Join(root, "sharded"), url+"/sharded", 0)
		sameAsLocal(t, "scan", filepath.Join(root, "torch"), url+"/torch", 0)
		sameAsLocal(t, "scan", filepath.Join(root, "big", "model.safetensors"), url+"/big/model.safetensors", 0)
		sameAsLocal(t, "scan", filepath.Join(run, bad), url+"/run/"+bad, 1)
	})
	t.Run("optimizer", func(t *testing.T) {
		// optimizer.pt beside the weights, and its poisoned twin: the optimizer
		// object and its findings are the same as on disk.
		sameAsLocal(t, "scan", filepath.Join(trainer, "checkpoint-6"), url+"/trainer/checkpoint-6", 0)
		sameAsLocal(t, "scan", filepath.Join(trainer, "poison-nan"), url+"/trainer/poison-nan", 1)
	})
	t.Run("inspect", func(t *testing.T) {
		sameAsLocal(t, "inspect", filepath.Join(root, "sharded"), url+"/sharded", 0)
		r := remoteRun(t, "inspect", url+"/big")
		r.wantCode(t, 0)
		if !strings.Contains(r.stdout, "over the network") {
			t.Errorf("inspect of an s3:// path does not say what it read:\n%s", r.stdout)
		}
	})
	t.Run("bisect", func(t *testing.T) {
		// The run's checkpoint-N prefixes are listed in the bucket.
		sameAsLocal(t, "bisect", run, url+"/run", 1)
	})
	t.Run("watch", func(t *testing.T) {
		l := remoteRun(t, "watch", "--once", "--json", run)
		r := remoteRun(t, "watch", "--once", "--json", url+"/run")
		l.wantCode(t, 1)
		r.wantCode(t, 1)
		lj := strings.ReplaceAll(l.stdout, run, "ROOT")
		rj := strings.ReplaceAll(r.stdout, url+"/run", "ROOT")
		if lj != rj {
			t.Errorf("watch --once --json of the bucket differs from the local one:\nlocal:\n%.3000s\nremote:\n%.3000s", lj, rj)
		}
	})
	t.Run("probe", func(t *testing.T) {
		// The forward pass reads config.json, the weights and the tokenizer
		// from the bucket.
		for _, c := range []string{good, bad} {
			want := remoteRun(t, "probe", "--json", filepath.Join(run, c)).code
			if want == 2 {
				t.Fatalf("probe of %s on disk fails to run", c)
			}
			sameAsLocal(t, "probe", filepath.Join(run, c), url+"/run/"+c, want)
		}
	})
	t.Run("diff", func(t *testing.T) {
		r := remoteRun(t, "diff", filepath.Join(run, "checkpoint-300"), url+"/run/checkpoint-300")
		r.wantCode(t, 0)
	})
	t.Run("repair", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "repaired")
		r := remoteRun(t, "repair", url+"/run/"+bad, "--from", url+"/run/"+good, "-o", out)
		r.wantCode(t, 0)
		remoteRun(t, "scan", out).wantCode(t, 0)
	})
	t.Run("missing", func(t *testing.T) {
		r := remoteRun(t, "scan", url+"/no-such-checkpoint")
		r.wantCode(t, 2)
		if !strings.Contains(r.stderr, "no-such-checkpoint") {
			t.Errorf("the error does not name the path:\n%s", r.stderr)
		}
	})
}
