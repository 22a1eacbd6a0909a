package formats

import (
	"errors"
	"testing"
)

// FuzzParseTrainerState feeds arbitrary bytes to the trainer_state.json reader:
// it must return a state or an ErrTrainerState error, never panic, and accept
// the bare NaN/Infinity tokens Python writes wherever a number may stand.
func FuzzParseTrainerState(f *testing.F) {
	f.Add([]byte(`{"global_step": 20, "log_history": [{"epoch": 0.1, "step": 5, "loss": 1.5, "grad_norm": NaN, "learning_rate": 3e-4}]}`))
	f.Add([]byte(`{"log_history": [{"step": 18, "loss": 9.2, "grad_norm": Infinity}, {"step": 19, "grad_norm": -Infinity}]}`))
	f.Add([]byte(`{"log_history": [{"step": 1, "note": "NaN inside a string, Infinity too"}]}`))
	f.Add([]byte(`{"global_step": NaN}`))
	f.Add([]byte(`{"log_history": null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"log_history": [{"step": 1e400}]}`))
	f.Add([]byte(`NaNaN`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseTrainerState("trainer_state.json", data)
		if err != nil {
			if !errors.Is(err, ErrTrainerState) {
				t.Fatalf("error outside the ErrTrainerState category: %v", err)
			}
			return
		}
		if st == nil {
			t.Fatal("nil state without an error")
		}
	})
}
