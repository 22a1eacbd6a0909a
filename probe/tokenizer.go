package probe

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/dlclark/regexp2"
	"golang.org/x/text/unicode/norm"
)

// Tokenizer is a byte-level BPE tokenizer read from a Hugging Face
// tokenizer.json, the kind GPT-2, Qwen2 and Llama 3 use: added (special)
// tokens matched first, an optional NFC normalizer, regex pre-tokenization
// (Split with behavior Isolated, or ByteLevel's own GPT-2 pattern), each
// piece's bytes mapped to printable characters, then BPE merges by rank.
// It adds no special tokens (no BOS): write them in the text if the model
// wants them ("<|begin_of_text|>Hello").
type Tokenizer struct {
	vocab        map[string]int
	byID         map[int]string
	ranks        map[[2]string]int
	added        []addedToken // longest content first
	splits       []*regexp2.Regexp
	prefixSpace  bool
	nfc          bool
	ignoreMerges bool
}

type addedToken struct {
	ID      int    `json:"id"`
	Content string `json:"content"`
}

// gpt2Pattern is the pre-tokenization pattern ByteLevel applies with use_regex.
const gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

// byteRune maps each byte to the printable character byte-level BPE writes
// it as (GPT-2's bytes_to_unicode); runeByte is the inverse.
// ErrTokenizerUnsupported: tokenizer.json asks for something the byte-level
// BPE tokenizer does not implement; token ids can still be given directly.
var ErrTokenizerUnsupported = errors.New("which probe's byte-level BPE tokenizer does not implement")

var byteRune, runeByte = func() ([256]rune, map[rune]byte) {
	var br [256]rune
	rb := map[rune]byte{}
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			br[b] = rune(b)
		} else {
			br[b] = rune(256 + n)
			n++
		}
		rb[br[b]] = byte(b)
	}
	return br, rb
}()

// ReadTokenizer reads a tokenizer.json.
func ReadTokenizer(path string) (*Tokenizer, error) {
	data, err := formats.ReadSideFile(path, 256<<20)
	if err != nil {
		return nil, err
	}
	return ParseTokenizer(path, data)
}

type tokJSON struct {
	Type          string                           `json:"type"`
	Pattern       *struct{ Regex, String *string } `json:"pattern"`
	Behavior      string                           `json:"behavior"`
	Invert        bool                             `json:"invert"`
	AddPrefix     bool                             `json:"add_prefix_space"`
	UseRegex      *bool                            `json:"use_regex"`
	Pretokenizers []tokJSON                        `json:"pretokenizers"`
	Normalizers   []tokJSON                        `json:"normalizers"`
}

// ParseTokenizer parses the text of a tokenizer.json; a feature this
// tokenizer does not implement is an error naming it, never a silent
// approximation.
func ParseTokenizer(path string, data []byte) (*Tokenizer, error) {
	var doc struct {
		Added        []addedToken `json:"added_tokens"`
		Normalizer   *tokJSON     `json:"normalizer"`
		PreTokenizer *tokJSON     `json:"pre_tokenizer"`
		Model        struct {
			Type         string          `json:"type"`
			Dropout      *float64        `json:"dropout"`
			Prefix       string          `json:"continuing_subword_prefix"`
			Suffix       string          `json:"end_of_word_suffix"`
			ByteFallback bool            `json:"byte_fallback"`
			IgnoreMerges bool            `json:"ignore_merges"`
			Vocab        map[string]int  `json:"vocab"`
			Merges       json.RawMessage `json:"merges"`
		} `json:"model"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: not a valid tokenizer.json: %v", path, err)
	}
	unsupported := func(what string) error {
		return fmt.Errorf("%s: uses %s: %w", path, what, ErrTokenizerUnsupported)
	}
	m := doc.Model
	switch {
	case m.Type != "BPE":
		return nil, unsupported(fmt.Sprintf("model type %q", m.Type))
	case m.Dropout != nil && *m.Dropout != 0:
		return nil, unsupported("BPE dropout")
	case m.Prefix != "" || m.Suffix != "":
		return nil, unsupported("continuing_subword_prefix or end_of_word_suffix")
	case m.ByteFallback:
		return nil, unsupported("byte_fallback (a SentencePiece-style BPE)")
	case len(m.Vocab) == 0:
		return nil, fmt.Errorf("%s: the BPE model has no vocabulary", path)
	}
	t := &Tokenizer{vocab: m.Vocab, byID: map[int]string{}, ranks: map[[2]string]int{}, ignoreMerges: m.IgnoreMerges}
	for s, id := range m.Vocab {
		t.byID[id] = s
	}
	// Merges are "a b" strings (older files) or ["a", "b"] pairs.
	var asStrings []string
	var asPairs [][2]string
	if err := json.Unmarshal(m.Merges, &asStrings); err == nil {
		for _, s := range asStrings {
			a, b, ok := strings.Cut(s, " ")
			if !ok {
				return nil, fmt.Errorf("%s: merge %q is not two symbols separated by a space", path, s)
			}
			asPairs = append(asPairs, [2]string{a, b})
		}
	} else if err := json.Unmarshal(m.Merges, &asPairs); err != nil {
		return nil, fmt.Errorf("%s: model.merges is neither a list of strings nor of pairs: %v", path, err)
	}
	for i, p := range asPairs {
		if _, dup := t.ranks[p]; !dup {
			t.ranks[p] = i
		}
	}
	for _, a := range doc.Added {
		if a.Content == "" {
			continue
		}
		t.added = append(t.added, a)
		t.byID[a.ID] = a.Content
	}
	sort.SliceStable(t.added, func(i, j int) bool { return len(t.added[i].Content) > len(t.added[j].Content) })

	var normalizer func(n *tokJSON) error
	normalizer = func(n *tokJSON) error {
		switch n.Type {
		case "NFC":
			t.nfc = true
		case "Sequence":
			for i := range n.Normalizers {
				if err := normalizer(&n.Normalizers[i]); err != nil {
					return err
				}
			}
		default:
			return unsupported(fmt.Sprintf("normalizer %q", n.Type))
		}
		return nil
	}
	if doc.Normalizer != nil {
		if err := normalizer(doc.Normalizer); err != nil {
			return nil, err
		}
	}
	pre := doc.PreTokenizer
	if pre == nil {
		return nil, unsupported("no pre_tokenizer (byte-level BPE needs ByteLevel)")
	}
	steps := []tokJSON{*pre}
	if pre.Type == "Sequence" {
		steps = pre.Pretokenizers
	}
	byteLevel := false
	for i, s := range steps {
		switch {
		case s.Type == "Split" && !byteLevel:
			if s.Behavior != "Isolated" || s.Invert || s.Pattern == nil {
				return nil, unsupported(fmt.Sprintf("a Split pre-tokenizer with behavior %q, invert %v", s.Behavior, s.Invert))
			}
			pat := ""
			switch {
			case s.Pattern.Regex != nil:
				pat = *s.Pattern.Regex
			case s.Pattern.String != nil:
				pat = regexp2.Escape(*s.Pattern.String)
			default:
				return nil, unsupported("a Split pattern that is neither Regex nor String")
			}
			// Backtracking with look-around, as the Oniguruma engine of
			// Hugging Face's tokenizers runs these patterns (Go's regexp has
			// no (?!\S)); a pattern that runs away is stopped, not waited for.
			re, err := regexp2.Compile(pat, regexp2.None)
			if err != nil {
				return nil, fmt.Errorf("%s: Split pattern %q: %v", path, pat, err)
			}
			re.MatchTimeout = 10 * time.Second
			t.splits = append(t.splits, re)
		case s.Type == "ByteLevel" && i == len(steps)-1:
			byteLevel = true
			t.prefixSpace = s.AddPrefix
			if s.UseRegex == nil || *s.UseRegex {
				t.splits = append(t.splits, regexp2.MustCompile(gpt2Pattern, regexp2.None))
			}
		default:
			return nil, unsupported(fmt.Sprintf("pre-tokenizer %q", s.Type))
		}
	}
	if !byteLevel {
		return nil, unsupported("a pre-tokenizer without ByteLevel last")
	}
	return t, nil
}

// Encode turns text into token ids.
func (t *Tokenizer) Encode(text string) ([]int, error) {
	if !utf8.ValidString(text) {
		return nil, fmt.Errorf("the prompt is not valid UTF-8")
	}
	var ids []int
	for len(text) > 0 {
		// The earliest added token (longest at a tie) splits the text.
		at, tok := -1, addedToken{}
		for _, a := range t.added {
			if i := strings.Index(text, a.Content); i >= 0 && (at < 0 || i < at) {
				at, tok = i, a
			}
		}
		plain := text
		if at >= 0 {
			plain = text[:at]
		}
		got, err := t.encodePlain(plain)
		if err != nil {
			return nil, err
		}
		ids = append(ids, got...)
		if at < 0 {
			break
		}
		ids = append(ids, tok.ID)
		text = text[at+len(tok.Content):]
	}
	return ids, nil
}

// encodePlain encodes text that holds no added token.
func (t *Tokenizer) encodePlain(text string) ([]int, error) {
	if text == "" {
		return nil, nil
	}
	if t.nfc {
		text = norm.NFC.String(text)
	}
	if t.prefixSpace && !strings.HasPrefix(text, " ") {
		text = " " + text
	}
	pieces := []string{text}
	for _, re := range t.splits {
		var next []string
		for _, p := range pieces {
			split, err := isolate(re, p)
			if err != nil {
				return nil, err
			}
			next = append(next, split...)
		}
		pieces = next
	}
	var ids []int
	for _, p := range pieces {
		var b strings.Builder
		for i := 0; i < len(p); i++ {
			b.WriteRune(byteRune[p[i]])
		}
		got, err := t.bpe(b.String())
		if err != nil {
			return nil, err
		}
		ids = append(ids, got...)
	}
	return ids, nil
}

// isolate splits s into the matches of re and the text between them (Split
// with behavior Isolated).
func isolate(re *regexp2.Regexp, s string) ([]string, error) {
	var out []string
	runes := []rune(s)
	last := 0 // in runes
	m, err := re.FindRunesMatch(runes)
	for ; m != nil && err == nil; m, err = re.FindNextMatch(m) {
		if m.Length == 0 {
			continue
		}
		if m.Index > last {
			out = append(out, string(runes[last:m.Index]))
		}
		out = append(out, string(runes[m.Index:m.Index+m.Length]))
		last = m.Index + m.Length
	}
	if err != nil {
		return nil, err
	}
	if last < len(runes) {
		out = append(out, string(runes[last:]))
	}
	return out, nil
}

// bpe merges the characters of one byte-level word by rank, lowest first
// (leftmost among equals), and maps the symbols to ids.
func (t *Tokenizer) bpe(word string) ([]int, error) {
	if id, ok := t.vocab[word]; ok && (t.ignoreMerges || utf8.RuneCountInString(word) == 1) {
		return []int{id}, nil
	}
	var syms []string
	for _, r := range word {
		syms = append(syms, string(r))
	}
	for len(syms) > 1 {
		best, at := -1, -1
		for i := 0; i+1 < len(syms); i++ {
			if r, ok := t.ranks[[2]string{syms[i], syms[i+1]}]; ok && (best < 0 || r < best) {
				best, at = r, i
			}
		}
		if at < 0 {
			break
		}
		// Merge every occurrence of the best pair, left to right.
		a, b := syms[at], syms[at+1]
		out := syms[:0:0]
		for i := 0; i < len(syms); i++ {
			if i+1 < len(syms) && syms[i] == a && syms[i+1] == b {
				out = append(out, a+b)
				i++
			} else {
				out = append(out, syms[i])
			}
		}
		syms = out
	}
	ids := make([]int, len(syms))
	for i, s := range syms {
		id, ok := t.vocab[s]
		if !ok {
			return nil, fmt.Errorf("symbol %q is not in the vocabulary (the tokenizer has no unknown token)", s)
		}
		ids[i] = id
	}
	return ids, nil
}

// Decode is the text of one token: added tokens as written, others with their
// byte-level characters mapped back to bytes (which may be part of a UTF-8
// sequence). ok is false for an id the tokenizer does not know.
func (t *Tokenizer) Decode(id int) (text string, ok bool) {
	s, ok := t.byID[id]
	if !ok {
		return "", false
	}
	for _, a := range t.added {
		if a.ID == id {
			return s, true
		}
	}
	var b []byte
	for _, r := range s {
		if c, ok := runeByte[r]; ok {
			b = append(b, c)
		} else {
			b = utf8.AppendRune(b, r)
		}
	}
	return string(b), true
}
