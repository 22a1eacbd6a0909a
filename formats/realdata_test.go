package formats_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
)

type expectedCorpus struct {
	Damaged map[string]struct {
		InspectExit *int   `json:"inspect_exit"`
		Check       string `json:"check"`
		Why         string `json:"why"`
		Mentions    string `json:"message_mentions"`
	} `json:"damaged"`
}

// realdataUnits lists what a user would hand to ckpt: every directory holding a
// sharded index, and every .safetensors file not inside such a directory; plus
// every directory with model.safetensors or adapter_model.safetensors.
func realdataUnits(t *testing.T, root string) []string {
	t.Helper()
	sharded := map[string]bool{}
	var files, dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		name := d.Name()
		switch {
		case strings.Contains(name, ".safetensors.index") && strings.HasSuffix(name, ".json"):
			sharded[filepath.Dir(p)] = true
		case strings.HasSuffix(name, ".safetensors"):
			files = append(files, p)
			if name == "model.safetensors" || name == "adapter_model.safetensors" {
				dirs = append(dirs, filepath.Dir(p))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var units []string
	for d := range sharded {
		units = append(units, d)
	}
	for _, f := range files {
		if !sharded[filepath.Dir(f)] {
			units = append(units, f)
		}
	}
	units = append(units, dirs...)
	sort.Strings(units)
	return units
}

func TestRealdata(t *testing.T) {
	root := realdataDir(t)
	raw, err := os.ReadFile(filepath.Join(root, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var exp expectedCorpus
	if err := json.Unmarshal(raw, &exp); err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	units := realdataUnits(t, root)
	if len(units) < 50 {
		t.Fatalf("only %d checkpoints found under %s", len(units), root)
	}
	for _, unit := range units {
		rel, _ := filepath.Rel(root, unit)
		rel = filepath.ToSlash(rel)
		t.Run(rel, func(t *testing.T) {
			c, err := formats.Open(unit)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			errs := problemsOf(c, formats.SevError)
			d, damaged := exp.Damaged[rel]
			for _, inner := range []string{"model.safetensors", "adapter_model.safetensors"} {
				if !damaged && c.Layout != formats.LayoutFile { // a directory whose weights file is damaged
					d, damaged = exp.Damaged[rel+"/"+inner]
				}
			}
			covered[rel] = damaged
			switch {
			case damaged && d.Check == "format":
				if len(errs) == 0 {
					t.Fatalf("damaged (%s) but no error problem", d.Why)
				}
				for _, p := range errs {
					if p.Err.File == "" || p.Err.Detail == "" {
						t.Errorf("problem without a file or a description: %+v", p.Err)
					}
				}
				if strings.Contains(d.Mentions, "LFS") {
					for _, f := range c.Files {
						if !errors.Is(f.Err, formats.ErrLFSPointer) {
							t.Errorf("%s: %v, want an LFS pointer error", f.Name, f.Err)
						}
					}
					if len(c.Files) == 0 {
						t.Error("no shard files opened")
					}
				} else if !isFormatError(errs[0].Err) {
					t.Errorf("%v is not a read-rule error", errs[0].Err)
				}
			default:
				// Healthy as a format (the NaN model is damaged in its values only).
				for _, p := range errs {
					t.Errorf("error on a healthy checkpoint: %v", p.Err)
				}
				for _, p := range problemsOf(c, formats.SevWarning) {
					t.Errorf("warning on a healthy checkpoint: %v", p.Err)
				}
				for _, f := range c.Files {
					if !f.Valid() {
						t.Errorf("%s: %v", f.Name, f.Err)
					}
				}
				for _, tn := range c.Tensors {
					if tn.Cut || tn.Offset+tn.Length() > tn.File.Size {
						t.Errorf("%s runs past its file", tn.Name)
					}
				}
			}
		})
	}
	// Every damaged safetensors entry was met; the GGUF ones get a GGUF finding.
	for rel := range exp.Damaged {
		if strings.HasSuffix(rel, ".gguf") {
			c, err := formats.Open(filepath.Join(root, filepath.FromSlash(rel)))
			if err != nil {
				t.Fatalf("%s: %v", rel, err)
			}
			if f := c.Files[0]; f.Format() != formats.ContainerGGUF || !(errors.Is(f.Err, formats.ErrGGUF) || errors.Is(f.Err, formats.ErrTruncated)) {
				t.Errorf("%s: container %s, error %v; want a GGUF finding", rel, f.Format(), f.Err)
			}
			continue
		}
		if !covered[rel] {
			t.Errorf("expected.json lists %s, which the walk did not open", rel)
		}
	}
}

func isFormatError(err error) bool {
	for _, k := range []error{formats.ErrHeaderTooSmall, formats.ErrHeaderTooLarge, formats.ErrInvalidHeaderLength,
		formats.ErrInvalidHeader, formats.ErrInvalidHeaderDeserialization, formats.ErrInvalidOffset,
		formats.ErrValidationOverflow, formats.ErrMisalignedSlice, formats.ErrTensorInvalidInfo,
		formats.ErrMetadataIncompleteBuffer} {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}

// Specific facts about individual files of the corpus.
func TestRealdataFacts(t *testing.T) {
	root := realdataDir(t)
	open := func(rel string) *formats.Checkpoint {
		t.Helper()
		return mustOpen(t, filepath.Join(root, filepath.FromSlash(rel)))
	}
	// The empty-header file is valid with zero tensors.
	if c := open("JunSuzukiJapan__tl/@b77a867ed0/model.safetensors"); len(c.Tensors) != 0 || len(c.AllProblems()) != 0 || !c.Files[0].Valid() {
		t.Errorf("empty header: %d tensors, %v", len(c.Tensors), c.AllProblems())
	}
	// Unpadded 2022 samples: valid, with an info problem only.
	for _, rel := range []string{"huggingface__safetensors/@bd71d434a6/samples/overall.safetensors", "jkrukowski__swift-safetensors/Tests/SafetensorsTests/data.safetensors"} {
		c := open(rel)
		ps := c.AllProblems()
		if len(ps) != 1 || ps[0].Severity != formats.SevInfo || !errors.Is(ps[0].Err, formats.ErrUnpaddedHeader) {
			t.Errorf("%s: %v", rel, ps)
		}
	}
	// The complete sharded set: 6 shards, 36 tensors, total_size 4305.
	c := open("FluxML__SafeTensors.jl/test/sharded")
	if c.Layout != formats.LayoutSharded || len(c.Files) != 6 || len(c.Tensors) != 36 {
		t.Errorf("sharded: %v, %d files, %d tensors", c.Layout, len(c.Files), len(c.Tensors))
	}
	if ts, ok := c.Index.TotalSize(); !ok || ts != 4305 {
		t.Errorf("total_size %v", ts)
	}
	// The LFS-pointer shards: each named, and the index still parsed (434 tensors).
	c = open("Jaysooner__GratefulGPT/V1")
	if c.Index == nil || len(c.Index.WeightMap) != 434 || len(c.Files) != 2 {
		t.Errorf("Jaysooner: index %v, %d files", c.Index != nil, len(c.Files))
	}
	// The symlink checked out as text names itself as not safetensors.
	c = open("JohnScheuer__mini-llm-inference-engine/model.safetensors")
	if !errors.Is(c.Files[0].Err, formats.ErrNotSafetensors) {
		t.Errorf("symlink text: %v", c.Files[0].Err)
	}
	// A PEFT adapter directory.
	c = open("MuzammelMokhtar__HIGH-PERFORMANCE-INFERENCE-ENGINE-USING-QWEN-2.5/lora_adapter")
	if c.Layout != formats.LayoutAdapter || len(c.Tensors) == 0 {
		t.Errorf("adapter: %v %d", c.Layout, len(c.Tensors))
	}
	// The MLX file with a null __metadata__ and data out of key order.
	c = open("ollama__ollama/@120061a11e/convert/testdata/adapters/discollama/adapters.safetensors")
	if h := c.Files[0].Header; h == nil || !h.HasMetadata || h.Metadata != nil {
		t.Errorf("MLX null metadata: %+v", h)
	}
}
