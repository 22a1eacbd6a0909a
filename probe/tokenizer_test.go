package probe

import (
	"strings"
	"testing"

	"golang.org/x/text/unicode/norm"

	"github.com/ckpt-tool/ckpt/internal/synth"
)

const (
	qwen2Pattern  = synth.Qwen2Pattern
	llama3Pattern = synth.Llama3Pattern
)

// testTokenizerJSON is synth's generated tokenizer.json, checked to map bytes
// as probe's reader does.
func testTokenizerJSON(t testing.TB, pattern string, nfc bool, merges [][2]string) []byte {
	t.Helper()
	for b := 0; b < 256; b++ {
		if synth.ByteLevelChar(byte(b)) != string(byteRune[b]) {
			t.Fatalf("byte %#x: generator writes %q, reader expects %q", b, synth.ByteLevelChar(byte(b)), byteRune[b])
		}
	}
	return synth.ByteLevelTokenizerJSON(pattern, nfc, merges)
}

var testMerges = [][2]string{
	{"H", "e"}, {"l", "l"}, {"He", "ll"}, {"Hell", "o"}, {"Ġ", "w"}, {"o", "r"}, {"Ġw", "or"}, {"l", "d"}, {"Ġwor", "ld"},
	{"1", "2"}, {"d", "o"}, {"do", "n"}, {"'", "t"}, {"Ã", "©"}, {"Ġ", "Ġ"}, {"Ġ", "b"},
}

// tokens maps ids back to their strings, for readable failures.
func tokens(tk *Tokenizer, ids []int) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = tk.byID[id]
	}
	return out
}

func TestTokenizerByteLevelBPE(t *testing.T) {
	qwen, err := ParseTokenizer("qwen2/tokenizer.json", testTokenizerJSON(t, qwen2Pattern, true, testMerges))
	if err != nil {
		t.Fatal(err)
	}
	llama, err := ParseTokenizer("llama3/tokenizer.json", testTokenizerJSON(t, llama3Pattern, false, testMerges))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tk   *Tokenizer
		text string
		want string // the token strings, joined by |
	}{
		{qwen, "Hello world", "Hello|Ġworld"},
		{qwen, "a  b", "a|Ġ|Ġb"},                    // \s+(?!\S): the last space goes with the word
		{qwen, "a   \nb", "a|ĠĠ|Ġ|Ċ|b"},             // \s*[\r\n]+ takes the spaces and the newline as one piece
		{qwen, "don't DON'T", "don|'t|Ġ|D|O|N|'|T"}, // (?i:'t) matches 'T; "'" "T" are not merged
		{qwen, "123", "1|2|3"},                      // Qwen2: one digit per piece, so "12" is never merged
		{llama, "12345", "12|3|4|5"},                // Llama 3: up to three digits per piece
		{qwen, "e\u0301", "Ã©"},                     // NFC first: é is c3 a9, merged
		{llama, "e\u0301", "e|Ì|ģ"},                 // no normalizer: e + U+0301 (cc 81)
		{qwen, "<|im_start|>Hello<|endoftext|>", "<|im_start|>|Hello|<|endoftext|>"},
		{qwen, "x<|im_start|><|im_start|>", "x|<|im_start|>|<|im_start|>"},
		{qwen, "", ""},
	} {
		ids, err := c.tk.Encode(c.text)
		if err != nil {
			t.Fatalf("%q: %v", c.text, err)
		}
		if got := strings.Join(tokens(c.tk, ids), "|"); got != c.want {
			t.Errorf("%q: %s, want %s", c.text, got, c.want)
		}
		var back strings.Builder
		for _, id := range ids {
			s, ok := c.tk.Decode(id)
			if !ok {
				t.Fatalf("%q: id %d does not decode", c.text, id)
			}
			back.WriteString(s)
		}
		want := c.text
		if c.tk.nfc {
			want = norm.NFC.String(want)
		}
		if back.String() != want {
			t.Errorf("%q decodes to %q", c.text, back.String())
		}
	}
	if _, err := qwen.Encode("\xff"); err == nil {
		t.Error("invalid UTF-8 accepted")
	}
}

// TestTokenizerRefusals: what the tokenizer does not implement is named.
func TestTokenizerRefusals(t *testing.T) {
	good := string(testTokenizerJSON(t, qwen2Pattern, false, testMerges))
	for _, c := range []struct{ from, to, want string }{
		{`"type":"BPE"`, `"type":"Unigram"`, `model type "Unigram"`},
		{`"byte_fallback":false`, `"byte_fallback":true`, "byte_fallback"},
		{`"behavior":"Isolated"`, `"behavior":"Removed"`, `behavior "Removed"`},
		{`"type":"ByteLevel"`, `"type":"Metaspace"`, `pre-tokenizer "Metaspace"`},
		{`"Regex":"`, `"Regex":"(`, "Split pattern"},
		{`{`, `[`, "not a valid tokenizer.json"},
	} {
		_, err := ParseTokenizer("t.json", []byte(strings.Replace(good, c.from, c.to, 1)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s → %s: %v, want %q", c.from, c.to, err, c.want)
		}
	}
}

// FuzzTokenizer: any tokenizer.json is parsed or refused, and any text is
// encoded or refused, without a panic; what is encoded decodes back.
func FuzzTokenizer(f *testing.F) {
	f.Add(testTokenizerJSON(f, qwen2Pattern, true, testMerges), "Hello world <|im_start|>x 123")
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"pre_tokenizer":{"type":"ByteLevel"}}`), "aaa")
	f.Fuzz(func(t *testing.T, data []byte, text string) {
		tk, err := ParseTokenizer("fuzz.json", data)
		if err != nil {
			return
		}
		ids, err := tk.Encode(text)
		if err != nil {
			return
		}
		var back strings.Builder
		for _, id := range ids {
			s, ok := tk.Decode(id)
			if !ok {
				t.Fatalf("id %d from Encode does not decode", id)
			}
			back.WriteString(s)
		}
		_ = back
	})
}
