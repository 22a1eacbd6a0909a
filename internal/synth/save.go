package synth

import (
	"os"
	"path/filepath"
	"sort"
)

// WriteRunTruth is WriteRun returning the run's whole ground truth.
func WriteRunTruth(runDir string, o RunOptions) (RunTruth, error) {
	if _, err := WriteRun(runDir, o); err != nil {
		return RunTruth{}, err
	}
	return o.Truth()
}

// StateFile is the file the Hugging Face Trainer writes last in a checkpoint.
const StateFile = "trainer_state.json"

// CopyCheckpoint copies the files of the checkpoint directory src into dst
// (created if needed) in the order the Trainer saves them: every file but
// trainer_state.json, by name, then trainer_state.json if withState. Tests
// use it to play a run's saves into a watched directory.
func CopyCheckpoint(src, dst string, withState bool) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	des, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	var names []string
	for _, de := range des {
		if de.Type().IsRegular() && de.Name() != StateFile {
			names = append(names, de.Name())
		}
	}
	sort.Strings(names)
	if withState {
		names = append(names, StateFile)
	}
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, n), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
