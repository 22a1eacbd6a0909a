package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/synth"
	"github.com/ckpt-tool/ckpt/internal/testenv"
)

// TestMain lets the test binary run as the real ckpt command inside the
// testscript scripts of testdata/script (testscript puts a "ckpt" on their PATH
// that re-executes this binary into main). The fixtures the tests share
// (shared_fixtures_test.go) are removed when they end.
func TestMain(m *testing.M) {
	testscript.Main(runThenClean{m}, map[string]func(){"ckpt": main})
}

// runThenClean runs the tests, then removes the shared fixtures.
type runThenClean struct{ m *testing.M }

func (r runThenClean) Run() int {
	defer removeSharedFixtures()
	return r.m.Run()
}

// TestScripts runs the command-line scripts in testdata/script. Besides the
// standard testscript commands they have:
//
//	exits N PROG [ARGS...]   run PROG (ckpt) and require exit status N
//	synth DIR [SHARDS [DTYPE]]  write a healthy tiny Qwen2-style checkpoint
//	inject nan|inf PATH TENSOR INDEX   set one element of a tensor
//	inject truncate FILE BYTES         cut bytes off the end of a file
//	inject lfs FILE                    replace a file by its Git LFS pointer
//	inject rmshard DIR K               delete shard K of a sharded checkpoint
//
// and the conditions [realdata] (the shared real files exist) and [example]
// (testdata/example/tiny-qwen2 exists). $MODROOT is the module root and
// $REALDATA the real-data folder.
func TestScripts(t *testing.T) {
	root := cliModuleRoot(t)
	realdata := filepath.Join(root, "..", "shared", "realdata")
	example := filepath.Join(root, "testdata", "example", "tiny-qwen2")
	goEnv := map[string]string{}
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOROOT"} {
		if out, err := exec.Command("go", "env", k).Output(); err == nil {
			goEnv[k] = string(trimNewline(out))
		}
	}
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: false,
		Setup: func(env *testscript.Env) error {
			env.Setenv("MODROOT", root)
			env.Setenv("REALDATA", realdata)
			env.Setenv("NO_COLOR", "")
			for k, v := range goEnv {
				env.Setenv(k, v)
			}
			env.Setenv("GOFLAGS", "-mod=mod")
			env.Setenv("GOPROXY", "off")
			env.Setenv("GOTOOLCHAIN", "local")
			return nil
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "realdata":
				_, err := os.Stat(filepath.Join(realdata, "expected.json"))
				if err != nil && testenv.InCI() {
					return false, fmt.Errorf("the real files are not available (%v) and CI=true: put the shared corpus beside the repository as ../shared/realdata", err)
				}
				return err == nil, nil
			case "example":
				_, err := os.Stat(example)
				return err == nil, nil
			}
			return false, errors.New("unknown condition " + strconv.Quote(cond))
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits":  cmdExits,
			"synth":  cmdSynth,
			"inject": cmdInject,
		},
	})
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// cmdExits: exits N PROG [ARGS...] runs PROG and requires exit status N; its
// stdout and stderr are then checked as after exec.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits N PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: bad status %q", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("exits: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

// cmdSynth: synth DIR [SHARDS [DTYPE]] writes a healthy tiny checkpoint.
func cmdSynth(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 3 {
		ts.Fatalf("usage: synth DIR [SHARDS [DTYPE]]")
	}
	o := synth.Options{Arch: synth.Tiny, Seed: 1}
	if len(args) > 1 {
		n, err := strconv.Atoi(args[1])
		ts.Check(err)
		o.Shards = n
	}
	if len(args) > 2 {
		o.DType = formats.DType(args[2])
	}
	ts.Check(synth.WriteCheckpoint(ts.MkAbs(args[0]), o))
}

// cmdInject damages a checkpoint with one of the synth injectors.
func cmdInject(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: inject nan|inf|truncate|lfs|rmshard PATH [ARGS...]")
	}
	path := ts.MkAbs(args[1])
	need := func(n int) {
		if len(args) != n {
			ts.Fatalf("inject %s: want %d arguments", args[0], n-1)
		}
	}
	switch args[0] {
	case "nan", "inf":
		need(4)
		i, err := strconv.Atoi(args[3])
		ts.Check(err)
		v := math.NaN()
		if args[0] == "inf" {
			v = math.Inf(1)
		}
		ts.Check(synth.SetValues(path, args[2], map[int]float64{i: v}))
	case "truncate":
		need(3)
		n, err := strconv.ParseInt(args[2], 10, 64)
		ts.Check(err)
		ts.Check(synth.Truncate(path, n))
	case "lfs":
		need(2)
		ts.Check(synth.WriteLFSPointer(path))
	case "rmshard":
		need(3)
		k, err := strconv.Atoi(args[2])
		ts.Check(err)
		_, err = synth.RemoveShard(path, k)
		ts.Check(err)
	default:
		ts.Fatalf("inject: unknown kind %q", args[0])
	}
}
