package repair

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/internal/synth"
	"github.com/ckpt-tool/ckpt/internal/teststore"
)

// BAD and GOOD in a store (read through formats.FS, as s3:// and https:// are)
// repair into the same local output as the same checkpoints on disk: every
// file byte-identical, the side files copied from the store, and the
// provenance naming the URLs.
func TestRepairFromStore(t *testing.T) {
	bad, good, _ := pair(t, 2, dmgA, dmgB)
	st := teststore.Register(t, "repairstore", true)
	for src, dst := range map[string]string{bad: "checkpoint-200", good: "checkpoint-100"} {
		if err := synth.CopyCheckpoint(src, filepath.Join(st.Root, "run", dst), true); err != nil {
			t.Fatal(err)
		}
	}
	local, remote := filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "out")
	if _, err := run(t, Options{Bad: bad, Good: good, Out: local}); err != nil {
		t.Fatal(err)
	}
	rep, err := run(t, Options{Bad: "repairstore://run/checkpoint-200", Good: "repairstore://run/checkpoint-100", Out: remote})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Written || rep.Verification == nil || !rep.Verification.Healthy {
		t.Fatalf("report: written %v, verification %+v", rep.Written, rep.Verification)
	}
	// Every tensor byte-identical; the files differ only in the provenance
	// entry, which names the inputs (local paths in one, URLs in the other).
	ta, tb := tensorBytes(t, local), tensorBytes(t, remote)
	if len(ta) != len(tb) {
		t.Fatalf("%d tensors from the store, %d on disk", len(tb), len(ta))
	}
	for name, b := range ta {
		if !sameBytes(b, tb[name]) {
			t.Errorf("tensor %s differs between the repair from the store and on disk", name)
		}
	}
	ca, cb := contentTree(t, local), contentTree(t, remote)
	for _, name := range []string{"config.json", "tokenizer.json", "generation_config.json"} {
		if ca[name] == "" || ca[name] != cb[name] {
			t.Errorf("%s: copied from the store %q, on disk %q", name, cb[name], ca[name])
		}
	}
	if len(ca) != len(cb) {
		t.Errorf("the outputs hold different files:\n%v\n%v", ca, cb)
	}
	for _, in := range rep.Inputs {
		if !strings.HasPrefix(in.Path, "repairstore://run/") {
			t.Errorf("provenance input %s is not the URL read", in.Path)
		}
	}
}
