package remote

import (
	"strings"
	"testing"
)

// The parsers of what a server sends (the Hub's tree listing, Content-Range,
// Link) and of the URLs a user gives: no input makes them panic, and what
// they accept keeps their promises.

func FuzzParseHFTree(f *testing.F) {
	f.Add([]byte(`[{"type":"file","oid":"a","size":3,"path":"d/x.json"},{"type":"directory","oid":"b","size":0,"path":"d/sub"},{"type":"file","oid":"c","size":1,"path":"d/m.safetensors","lfs":{"oid":"sha","size":99}}]`), "d")
	f.Add([]byte(`[{"type":"file","path":"../x"},{"type":"file","path":"d/.."},{"type":"file","size":-1,"path":"d/y"}]`), "d")
	f.Add([]byte(`{}`), "")
	f.Fuzz(func(t *testing.T, data []byte, dir string) {
		entries, err := parseHFTree(data, dir)
		if err != nil {
			return
		}
		for _, e := range entries {
			if !plainName(e.Name()) {
				t.Fatalf("entry name %q is not one path element", e.Name())
			}
			if info, _ := e.Info(); info.Size() < 0 {
				t.Fatalf("entry %q has size %d", e.Name(), info.Size())
			}
		}
	})
}

func FuzzParseHF(f *testing.F) {
	for _, s := range []string{"hf://org/repo/a.safetensors", "hf://datasets/o/r@refs%2Fpr%2F1/x/", "hf://o/r@", "hf://o/../x", "hf://a/b/c/./d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, u string) {
		r, err := parseHF(u)
		if err != nil {
			return
		}
		if strings.Count(r.repo, "/") != 1 || r.rev == "" {
			t.Fatalf("%q: repo %q rev %q", u, r.repo, r.rev)
		}
		for _, el := range strings.Split(r.path, "/") {
			if el == ".." || el == "." {
				t.Fatalf("%q: path %q escapes", u, r.path)
			}
		}
	})
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-99/1000", "bytes 5-9/*", "bytes -1-2/3", "bytes 9223372036854775807-1/2", "items 0-1/2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, total, ok := parseContentRange(s)
		if ok && (start < 0 || total < -1) {
			t.Fatalf("%q: start %d total %d", s, start, total)
		}
	})
}

func FuzzNextLink(f *testing.F) {
	f.Add(`<https://h/api/models/o/r/tree/main?cursor=x>; rel="next"`)
	f.Add(`<a>; rel="prev", <b>; rel="next"`)
	f.Fuzz(func(t *testing.T, h string) {
		if l := nextLink(h); strings.ContainsAny(l, "<>") {
			t.Fatalf("%q: link %q keeps its brackets", h, l)
		}
	})
}
