package hostile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
)

// TestCampaignBase: the campaign's base checkpoint is healthy as read by
// formats (no problem at all), and every mutation's anchor text is in it.
func TestCampaignBase(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "checkpoint-100")
	if err := WriteCampaignBase(dir); err != nil {
		t.Fatal(err)
	}
	c, err := formats.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p := c.AllProblems(); len(p) > 0 || c.Layout != formats.LayoutSharded || c.Config == nil || len(c.Tensors) != 6 {
		t.Fatalf("base: layout %s, %d tensors, config %v, problems %v", c.Layout, len(c.Tensors), c.Config != nil, p)
	}
	b, err := os.ReadFile(filepath.Join(dir, mutShard2))
	if err != nil {
		t.Fatal(err)
	}
	h, _, _ := headerOf(b)
	for _, anchor := range []string{`"__metadata__":{"format":"pt"}`, `"shape":[8]`, `"dtype":"F32"`, `"lm_head.weight"`} {
		if !strings.Contains(string(h), anchor) {
			t.Errorf("header lacks %s:\n%s", anchor, h)
		}
	}
}

// TestMutateDeterministic: a seed gives the same case every time, and seeds
// cover every mutation.
func TestMutateDeterministic(t *testing.T) {
	root := t.TempDir()
	a, err := Mutate(filepath.Join(root, "a"), 7)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Mutate(filepath.Join(root, "b"), 7)
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != b.Name {
		t.Errorf("seed 7 gave %s, then %s", a.Name, b.Name)
	}
	seen := map[string]bool{}
	for seed := uint64(0); seed < 200; seed++ {
		c, err := Mutate(filepath.Join(root, "c"), seed)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mutations {
			if strings.Contains(c.Name, m.name) {
				seen[m.name] = true
			}
		}
		os.RemoveAll(filepath.Join(root, "c"))
	}
	for _, m := range mutations {
		if !seen[m.name] {
			t.Errorf("200 seeds never apply %s", m.name)
		}
	}
}
