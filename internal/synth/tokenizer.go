package synth

import (
	"encoding/json"
)

// The pre-tokenization patterns of Qwen2's and Llama 3's tokenizer.json.
const (
	Qwen2Pattern  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	Llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// ByteLevelChar is the printable character byte-level BPE writes byte b as
// (GPT-2's bytes_to_unicode): printable Latin-1 bytes stand for themselves,
// the others are numbered from U+0100 in byte order.
func ByteLevelChar(b byte) string {
	printable := func(c int) bool {
		return (c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF)
	}
	if printable(int(b)) {
		return string(rune(b))
	}
	n := 0
	for c := 0; c < int(b); c++ {
		if !printable(c) {
			n++
		}
	}
	return string(rune(256 + n))
}

// ByteLevelTokenizerJSON is a byte-level BPE tokenizer.json laid out as
// transformers writes Qwen2's: the 256 byte characters as ids 0-255, then one
// id per new merge result, merges in rank order, <|endoftext|> (id 1000) and
// <|im_start|> (id 1001) as added tokens, pattern in a Split before ByteLevel,
// and an NFC normalizer when nfc is set.
func ByteLevelTokenizerJSON(pattern string, nfc bool, merges [][2]string) []byte {
	vocab := map[string]int{}
	for b := 0; b < 256; b++ {
		vocab[ByteLevelChar(byte(b))] = b
	}
	for _, m := range merges {
		if _, ok := vocab[m[0]+m[1]]; !ok {
			vocab[m[0]+m[1]] = len(vocab)
		}
	}
	var normalizer any
	if nfc {
		normalizer = map[string]any{"type": "NFC"}
	}
	doc := map[string]any{
		"version": "1.0",
		"added_tokens": []any{map[string]any{"id": 1000, "content": "<|endoftext|>", "special": true},
			map[string]any{"id": 1001, "content": "<|im_start|>", "special": true}},
		"normalizer": normalizer,
		"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": pattern}, "behavior": "Isolated", "invert": false},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
		}},
		"model": map[string]any{"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": "", "end_of_word_suffix": "",
			"fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": merges},
	}
	data, err := json.Marshal(doc)
	if err != nil {
		panic(err) // only strings, numbers and maps above
	}
	return data
}
