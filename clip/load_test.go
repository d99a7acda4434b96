package clip

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/weights"
)

// writeTextEncoder writes a text_encoder folder: the tiny config and a model.safetensors
// holding the tiny weights, position_ids (I64 0…76, as older checkpoints carry it) and extra.
func writeTextEncoder(t *testing.T, extra map[string][]float32) string {
	t.Helper()
	src, err := weights.Open(golden.Path("tiny-sd", "text_encoder"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	type entry struct {
		DType   string `json:"dtype"`
		Shape   []int  `json:"shape"`
		Offsets [2]int `json:"data_offsets"`
	}
	header := map[string]entry{}
	var data []byte
	add := func(name, dtype string, shape []int, raw []byte) {
		header[name] = entry{dtype, shape, [2]int{len(data), len(data) + len(raw)}}
		data = append(data, raw...)
	}
	f32 := func(v []float32) []byte {
		b := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
		}
		return b
	}
	names := src.Names()
	sort.Strings(names)
	for _, name := range names {
		tt, err := src.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		add(name, "F32", tt.Shape().Clone(), f32(tt.Float32s()[:tt.Size()]))
	}
	pos := make([]byte, 8*77)
	for i := 0; i < 77; i++ {
		binary.LittleEndian.PutUint64(pos[8*i:], uint64(i))
	}
	add(positionIDs, "I64", []int{1, 77}, pos)
	for name, v := range extra {
		add(name, "F32", []int{len(v)}, f32(v))
	}
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	file := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	file = append(append(file, h...), data...)
	dir := t.TempDir()
	cfg, err := os.ReadFile(golden.Path("tiny-sd", "text_encoder", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), file, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestLoadPositionIDs checks that a checkpoint carrying the position_ids buffer loads (the
// buffer is ignored, as in transformers 4.33) and gives the reference output.
func TestLoadPositionIDs(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	m, err := Load(writeTextEncoder(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	got, err := m.Encode(context.Background(), rows(f.Must(t, "text.input_ids")))
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "with position_ids", got.Float32s(), f.Must(t, "text.last_hidden_state"), tol)
}

// TestLoadUnused checks that a tensor the config does not use is an error naming it.
func TestLoadUnused(t *testing.T) {
	name := "text_model.encoder.layers.2.layer_norm1.weight"
	_, err := Load(writeTextEncoder(t, map[string][]float32{name: make([]float32, 32)}))
	if err == nil || !strings.Contains(err.Error(), name) {
		t.Fatalf("error %v, want one naming %s", err, name)
	}
	t.Log(err)
}
