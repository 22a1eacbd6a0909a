package formats

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
)

// ErrTrainerState means a trainer_state.json could not be read as the Hugging
// Face Trainer writes it.
var ErrTrainerState = errors.New("trainer_state.json is not readable")

// MaxTrainerStateSize caps how much of a trainer_state.json is read (a run of
// millions of logged steps stays far below it).
const MaxTrainerStateSize = 512 << 20

// TrainerState is the part of a Hugging Face trainer_state.json that says what
// happened during training: the step counters and the log history.
type TrainerState struct {
	Path         string
	GlobalStep   int
	MaxSteps     int
	LoggingSteps int
	SaveSteps    int
	Epoch        float64
	LogHistory   []LogEntry // in file order (the Trainer appends in step order)
}

// LogEntry is one entry of log_history. Loss, GradNorm and LearningRate are nil
// when the entry does not carry them (evaluation entries, the final summary);
// they may hold NaN or ±Inf, which Python writes as bare NaN/Infinity tokens.
type LogEntry struct {
	Step         int
	Epoch        float64
	Loss         *float64
	GradNorm     *float64
	LearningRate *float64
	EvalLoss     *float64
	Values       map[string]float64 // every numeric field of the entry, by key
}

// ReadTrainerState reads and parses a trainer_state.json file.
func ReadTrainerState(path string) (*TrainerState, error) {
	data, err := ReadSideFile(path, MaxTrainerStateSize)
	if err != nil {
		return nil, sideFileFinding(err, ErrTrainerState)
	}
	return ParseTrainerState(path, data)
}

// ParseTrainerState parses the text of a trainer_state.json. It accepts the bare
// NaN, Infinity and -Infinity tokens Python's json module writes after a
// divergence (Go's encoding/json rejects them). path names the file in errors.
func ParseTrainerState(path string, data []byte) (*TrainerState, error) {
	text, err := quoteNonFinite(data)
	if err != nil {
		return nil, newErr(ErrTrainerState, path, "", -1, "%v", err)
	}
	var raw struct {
		GlobalStep   json.RawMessage   `json:"global_step"`
		MaxSteps     json.RawMessage   `json:"max_steps"`
		LoggingSteps json.RawMessage   `json:"logging_steps"`
		SaveSteps    json.RawMessage   `json:"save_steps"`
		Epoch        json.RawMessage   `json:"epoch"`
		LogHistory   []json.RawMessage `json:"log_history"`
	}
	if err := json.Unmarshal(text, &raw); err != nil {
		return nil, newErr(ErrTrainerState, path, "", -1, "not the JSON object the Trainer writes: %v", err)
	}
	st := &TrainerState{Path: path}
	ints := []struct {
		name string
		raw  json.RawMessage
		dst  *int
	}{{"global_step", raw.GlobalStep, &st.GlobalStep}, {"max_steps", raw.MaxSteps, &st.MaxSteps},
		{"logging_steps", raw.LoggingSteps, &st.LoggingSteps}, {"save_steps", raw.SaveSteps, &st.SaveSteps}}
	for _, f := range ints {
		if len(f.raw) == 0 {
			continue
		}
		v, ok := number(f.raw)
		if !ok {
			// logging_steps and save_steps may be ratios (floats) in newer versions:
			// only a non-number is an error.
			if string(bytes.TrimSpace(f.raw)) == "null" {
				continue
			}
			return nil, newErr(ErrTrainerState, path, "", -1, "%s is %s, not a number", f.name, clip(f.raw))
		}
		if iv, ok := asInt(v); ok {
			*f.dst = iv
		}
	}
	if v, ok := number(raw.Epoch); ok {
		st.Epoch = v
	}
	for i, m := range raw.LogHistory {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(m, &fields); err != nil {
			return nil, newErr(ErrTrainerState, path, "", -1, "log_history entry %d is not an object: %v", i, err)
		}
		e := LogEntry{Values: map[string]float64{}}
		for k, rv := range fields {
			if v, ok := number(rv); ok {
				e.Values[k] = v
			}
		}
		step, ok := e.Values["step"]
		if !ok {
			return nil, newErr(ErrTrainerState, path, "", -1, "log_history entry %d has no numeric step", i)
		}
		if e.Step, ok = asInt(step); !ok {
			return nil, newErr(ErrTrainerState, path, "", -1, "log_history entry %d has step %v, not a whole number", i, step)
		}
		e.Epoch = e.Values["epoch"]
		e.Loss, e.GradNorm = ptr(e.Values, "loss"), ptr(e.Values, "grad_norm")
		e.LearningRate, e.EvalLoss = ptr(e.Values, "learning_rate"), ptr(e.Values, "eval_loss")
		st.LogHistory = append(st.LogHistory, e)
	}
	// The Trainer appends in step order; a resumed run can repeat steps. Keep the
	// file order among equal steps.
	sort.SliceStable(st.LogHistory, func(i, j int) bool { return st.LogHistory[i].Step < st.LogHistory[j].Step })
	return st, nil
}

func ptr(m map[string]float64, k string) *float64 {
	if v, ok := m[k]; ok {
		return &v
	}
	return nil
}

func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// asInt converts a whole float64 within int range.
func asInt(v float64) (int, bool) {
	if v != math.Trunc(v) || math.Abs(v) > 1<<53 {
		return 0, false
	}
	return int(v), true
}

// nonFiniteNames are the sentinel strings quoteNonFinite writes for the bare
// tokens; a real string with the same text is indistinguishable, which is
// harmless here (such a value is as meaningless as a number as the token).
var nonFiniteNames = map[string]float64{"NaN": math.NaN(), "Infinity": math.Inf(1), "-Infinity": math.Inf(-1)}

// number decodes a JSON value that is a number or one of the quoted non-finite
// sentinels.
func number(raw json.RawMessage) (float64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0, false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return 0, false
		}
		v, ok := nonFiniteNames[s]
		return v, ok
	}
	if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return 0, false
	}
	return v, true
}

// quoteNonFinite rewrites the bare tokens NaN, Infinity and -Infinity outside
// strings as JSON strings, leaving everything else byte for byte.
func quoteNonFinite(data []byte) ([]byte, error) {
	if !bytes.Contains(data, []byte("NaN")) && !bytes.Contains(data, []byte("Infinity")) {
		return data, nil
	}
	out := make([]byte, 0, len(data)+64)
	for i := 0; i < len(data); {
		c := data[i]
		switch {
		case c == '"':
			j := i + 1
			for ; j < len(data); j++ {
				if data[j] == '\\' {
					j++
					continue
				}
				if data[j] == '"' {
					break
				}
			}
			if j >= len(data) {
				return nil, fmt.Errorf("unterminated string at byte %d", i)
			}
			out = append(out, data[i:j+1]...)
			i = j + 1
		case bytes.HasPrefix(data[i:], []byte("NaN")) && tokenEnds(data, i+3):
			out = append(out, `"NaN"`...)
			i += 3
		case bytes.HasPrefix(data[i:], []byte("Infinity")) && tokenEnds(data, i+8):
			out = append(out, `"Infinity"`...)
			i += 8
		case bytes.HasPrefix(data[i:], []byte("-Infinity")) && tokenEnds(data, i+9):
			out = append(out, `"-Infinity"`...)
			i += 9
		default:
			out = append(out, c)
			i++
		}
	}
	return out, nil
}

// tokenEnds reports whether a bare token ending at i is followed by a delimiter.
func tokenEnds(data []byte, i int) bool {
	if i >= len(data) {
		return true
	}
	switch data[i] {
	case ',', '}', ']', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}
