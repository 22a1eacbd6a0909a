package formats

import "fmt"

// maxJSONDepth is the deepest nesting of arrays and objects that serde_json (the
// reference reader's parser) accepts: its recursion limit of 128 rejects the
// 128th level.
const maxJSONDepth = 127

// strictJSONCheck finds what Go's encoding/json tolerates but serde_json, the
// reference reader's parser, rejects: escaped UTF-16 surrogates that do not form
// a pair (Go silently turns them into U+FFFD) and nesting deeper than
// maxJSONDepth. It returns the byte offset in text and a description of the
// first such problem, or "" when there is none. Other syntax errors are left to
// the decoder, which reports them; the scan never reads past len(text).
func strictJSONCheck(text []byte) (int, string) {
	depth := 0
	inString := false
	pendingHigh := -1 // offset of an escaped high surrogate awaiting its low half
	for i := 0; i < len(text); i++ {
		c := text[i]
		if !inString {
			switch c {
			case '"':
				inString = true
			case '{', '[':
				depth++
				if depth > maxJSONDepth {
					return i, fmt.Sprintf("JSON nested more than %d levels deep", maxJSONDepth)
				}
			case '}', ']':
				depth--
			}
			continue
		}
		if c == '"' {
			if pendingHigh >= 0 {
				return pendingHigh, "string holds an unpaired UTF-16 surrogate escape"
			}
			inString = false
			continue
		}
		if c != '\\' {
			if pendingHigh >= 0 {
				return pendingHigh, "string holds an unpaired UTF-16 surrogate escape"
			}
			continue
		}
		// An escape: \x or \uXXXX.
		if i+1 >= len(text) {
			return -1, "" // unterminated: the decoder reports it
		}
		if text[i+1] != 'u' {
			if pendingHigh >= 0 {
				return pendingHigh, "string holds an unpaired UTF-16 surrogate escape"
			}
			i++
			continue
		}
		v, ok := hex4(text, i+2)
		if !ok {
			return -1, "" // malformed escape: the decoder reports it
		}
		switch {
		case v >= 0xD800 && v <= 0xDBFF:
			if pendingHigh >= 0 {
				return pendingHigh, "string holds an unpaired UTF-16 surrogate escape"
			}
			pendingHigh = i
		case v >= 0xDC00 && v <= 0xDFFF:
			if pendingHigh < 0 {
				return i, "string holds an unpaired UTF-16 surrogate escape"
			}
			pendingHigh = -1
		default:
			if pendingHigh >= 0 {
				return pendingHigh, "string holds an unpaired UTF-16 surrogate escape"
			}
		}
		i += 5
	}
	return -1, ""
}

// hex4 decodes the four hex digits at text[at:at+4].
func hex4(text []byte, at int) (int, bool) {
	if at+4 > len(text) {
		return 0, false
	}
	v := 0
	for _, c := range text[at : at+4] {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | int(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | int(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | int(c-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
}
