package formats_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/teststore"
)

func TestOpenThroughRegisteredStore(t *testing.T) {
	for _, listable := range []bool{true, false} {
		scheme := fmt.Sprintf("teststore%v", listable)
		t.Run(scheme, func(t *testing.T) {
			d := teststore.Register(t, scheme, listable)
			shardedSpec{shards: twoShards()}.write(t, filepath.Join(d.Root, "run", "m1"))
			url := scheme + "://run/m1"
			c := mustOpen(t, url)
			local := mustOpen(t, filepath.Join(d.Root, "run", "m1"))
			if c.Layout != formats.LayoutSharded || len(c.Files) != 2 || len(c.Tensors) != len(local.Tensors) {
				t.Fatalf("layout %v, %d files, %d tensors; local: %d tensors", c.Layout, len(c.Files), len(c.Tensors), len(local.Tensors))
			}
			for i, f := range c.Files {
				want := url + "/" + local.Files[i].Name
				if f.Path != want || f.Name != local.Files[i].Name {
					t.Errorf("file %d: path %q name %q, want %q %q", i, f.Path, f.Name, want, local.Files[i].Name)
				}
			}
			if ps := c.AllProblems(); len(ps) != 0 {
				t.Fatalf("problems on a healthy remote checkpoint: %v", ps)
			}
			// The data is read through the store too.
			src, err := formats.OpenSource(c.Files[0].Path, formats.Mmap)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if _, ok := src.(formats.Mapped); ok {
				t.Errorf("a store's source claims to be mapped")
			}
			st, _ := src.Stat()
			if err := c.Files[0].CheckUnchanged(st); err != nil {
				t.Errorf("unchanged object reported changed: %v", err)
			}
			d.Bump(c.Files[0].Path)
			st, _ = src.Stat()
			if err := c.Files[0].CheckUnchanged(st); !errors.Is(err, formats.ErrFileChanged) {
				t.Errorf("object with a new ETag: got %v, want ErrFileChanged", err)
			}
		})
	}
}

func TestOpenThroughStoreMissingAndUnknown(t *testing.T) {
	teststore.Register(t, "teststoremissing", true)
	if _, err := formats.Open("teststoremissing://nothing/here"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing remote path: %v, want fs.ErrNotExist", err)
	}
	_, err := formats.Open("nosuchscheme://bucket/x")
	if err == nil || !strings.Contains(err.Error(), "no reader for nosuchscheme:// paths") {
		t.Errorf("unknown scheme: %v", err)
	}
}

func TestSideFileThroughStore(t *testing.T) {
	d := teststore.Register(t, "teststoreside", true)
	if err := os.WriteFile(filepath.Join(d.Root, "config.json"), []byte(`{"model_type":"llama"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := formats.ReadSideFile("teststoreside://config.json", 1<<10)
	if err != nil || string(got) != `{"model_type":"llama"}` {
		t.Fatalf("ReadSideFile: %q, %v", got, err)
	}
	if _, err := formats.ReadSideFile("teststoreside://config.json", 4); !errors.Is(err, formats.ErrSideFileTooLarge) {
		t.Fatalf("over the cap: %v", err)
	}
}

func TestRemotePathHelpers(t *testing.T) {
	cases := []struct{ in, scheme, dir, base, join string }{
		{"s3://bucket/run/checkpoint-5", "s3", "s3://bucket/run", "checkpoint-5", "s3://bucket/run/checkpoint-5/model.safetensors"},
		{"s3://bucket/run/checkpoint-5/", "s3", "s3://bucket/run", "checkpoint-5", "s3://bucket/run/checkpoint-5/model.safetensors"},
		{"hf://org/repo@main/sub", "hf", "hf://org/repo@main", "sub", "hf://org/repo@main/sub/model.safetensors"},
		{"HTTPS://host/a", "https", "HTTPS://host", "a", "HTTPS://host/a/model.safetensors"},
		{"s3://bucket", "s3", "s3://", "bucket", "s3://bucket/model.safetensors"},
		{"run/checkpoint-5", "", "run", "checkpoint-5", filepath.Join("run", "checkpoint-5", "model.safetensors")},
		{"c:/x", "", "c:", "x", filepath.Join("c:/x", "model.safetensors")},
		{"1a://x", "", ".", "x", filepath.Join("1a://x", "model.safetensors")},
	}
	for _, c := range cases {
		if got := formats.Scheme(c.in); got != c.scheme {
			t.Errorf("Scheme(%q) = %q, want %q", c.in, got, c.scheme)
		}
		if got := formats.DirOf(c.in); c.scheme != "" && got != c.dir {
			t.Errorf("DirOf(%q) = %q, want %q", c.in, got, c.dir)
		}
		if got := formats.BaseOf(c.in); got != c.base {
			t.Errorf("BaseOf(%q) = %q, want %q", c.in, got, c.base)
		}
		if got := formats.JoinPath(c.in, "model.safetensors"); got != c.join {
			t.Errorf("JoinPath(%q) = %q, want %q", c.in, got, c.join)
		}
	}
}
