package synth_test

import (
	"os"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// BenchmarkWriteCheckpoint measures generation throughput (bytes of weights
// written per second) on a model of a few MB.
func BenchmarkWriteCheckpoint(b *testing.B) {
	arch := synth.Arch{Name: "bench", VocabSize: 4096, Hidden: 256, Intermediate: 1024, Layers: 4, Heads: 4, KVHeads: 2}
	var size int64
	for _, s := range arch.Specs(formats.BF16) {
		n, _ := s.ByteLen()
		size += int64(n)
	}
	b.SetBytes(size)
	dir := b.TempDir()
	for i := 0; i < b.N; i++ {
		if err := synth.WriteCheckpoint(dir, synth.Options{Arch: arch, Seed: int64(i), Overwrite: true}); err != nil {
			b.Fatal(err)
		}
	}
	os.RemoveAll(dir)
}
