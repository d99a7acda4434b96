package weights

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

type stTensor struct {
	dtype string
	shape []int
	data  []byte
}

func le32(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func le64(v ...int64) []byte {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
	}
	return b
}

// buildSafetensors writes a well-formed safetensors file (names sorted, data packed).
func buildSafetensors(tensors map[string]stTensor) []byte {
	names := make([]string, 0, len(tensors))
	for n := range tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	header := map[string]any{}
	var data []byte
	for _, n := range names {
		tt := tensors[n]
		header[n] = map[string]any{"dtype": tt.dtype, "shape": tt.shape, "data_offsets": []int{len(data), len(data) + len(tt.data)}}
		data = append(data, tt.data...)
	}
	h, _ := json.Marshal(header)
	return rawSafetensors(h, data)
}

func rawSafetensors(header, data []byte) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(out, header...), data...)
}

func writeSafetensors(t *testing.T, path string, tensors map[string]stTensor) {
	t.Helper()
	if err := os.WriteFile(path, buildSafetensors(tensors), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBadInput(t *testing.T) {
	good := buildSafetensors(map[string]stTensor{"w": {"F32", []int{2}, le32(1, 2)}})
	legacy, err := os.ReadFile(testdata("text_encoder.legacy-format.bin"))
	if err != nil {
		t.Fatal(err)
	}
	zipBin, err := os.ReadFile(testdata("tiny-sd-bin", "text_encoder", "pytorch_model.bin"))
	if err != nil {
		t.Fatal(err)
	}
	hdr := func(s string) []byte { return rawSafetensors([]byte(s), le32(1, 2)) }
	cases := map[string][]byte{
		"empty":                  {},
		"short":                  {1, 2, 3},
		"header length too long": append(binary.LittleEndian.AppendUint64(nil, 1<<20), []byte("{}")...),
		"header length huge":     binary.LittleEndian.AppendUint64(nil, math.MaxUint64),
		"truncated data":         good[:len(good)-1],
		"trailing data":          append(append([]byte{}, good...), 0),
		"bad json":               hdr(`{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]`),
		"unknown dtype":          hdr(`{"w": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 8]}}`),
		"offsets out of range":   hdr(`{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 16]}}`),
		"offsets overlapping": hdr(`{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
			"b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}`),
		"offsets reversed":     hdr(`{"w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}}`),
		"shape/size mismatch":  hdr(`{"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}`),
		"negative shape":       hdr(`{"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}`),
		"shape overflow":       hdr(`{"w": {"dtype": "F32", "shape": [4294967296, 4294967296, 4], "data_offsets": [0, 8]}}`),
		"header not an object": hdr(`[1, 2]`),
		"truncated zip .bin":   zipBin[:len(zipBin)/2],
		"truncated legacy":     legacy[:len(legacy)/2],
		"legacy header only":   legacy[:64],
		"zip not a checkpoint": zipOf(t, map[string]string{"hello.txt": "hi"}),
		"zip bad pickle":       zipOf(t, map[string]string{"archive/data.pkl": "\x80\x02}q\x00(X\x01"}),
		"zip pickle not dict":  zipOf(t, map[string]string{"archive/data.pkl": "\x80\x02K\x05."}),
		"pickle not torch":     append([]byte("\x80\x02K\x05."), make([]byte, 16)...),
	}
	dir := t.TempDir()
	for name, data := range cases {
		p := filepath.Join(dir, strings.ReplaceAll(name, "/", "_")+".bin")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := OpenFile(p)
		if err == nil {
			// Zero-sized but well-formed headers may open; fetching must still fail cleanly.
			for _, n := range s.Names() {
				if _, err = s.Tensor(n); err != nil {
					break
				}
			}
			s.Close()
		}
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if !strings.Contains(err.Error(), p) && !strings.Contains(err.Error(), "weights:") {
			t.Errorf("%s: error does not name the file: %v", name, err)
		}
		t.Logf("%s: %v", name, err)
	}

	// Missing files, folders and components.
	empty := t.TempDir()
	if _, err := Open(empty); err == nil || !strings.Contains(err.Error(), empty) {
		t.Errorf("folder without weights: %v", err)
	} else {
		t.Logf("no weights: %v", err)
	}
	if _, err := Open(filepath.Join(empty, "nope")); err == nil {
		t.Error("missing folder: no error")
	}
	if _, err := OpenFile(filepath.Join(empty, "nope.safetensors")); err == nil {
		t.Error("missing file: no error")
	}
	if _, err := OpenFile(empty); err == nil {
		t.Error("directory as file: no error")
	}
}

func zipOf(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBadModelFolder(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenModel(dir); err == nil || !strings.Contains(err.Error(), "model_index.json") {
		t.Errorf("no model_index.json: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "model_index.json"), []byte(`{"unet": ["diffusers", "UNet2DConditionModel"],`), 0o644)
	if _, err := OpenModel(dir); err == nil || !strings.Contains(err.Error(), "model_index.json") {
		t.Errorf("bad JSON: %v", err)
	} else {
		t.Logf("bad model_index.json: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "model_index.json"), []byte(`{"unet": ["diffusers", "UNet2DConditionModel"], "vae": [null, null]}`), 0o644)
	m, err := OpenModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = m.Component("unet")
	t.Logf("component without folder: %v", err)
	if err == nil || !strings.Contains(err.Error(), "unet") || !strings.Contains(err.Error(), dir) {
		t.Errorf("component without folder: %v", err)
	}
	if _, _, err := m.Component("vae"); err == nil {
		t.Error("null component: no error")
	}
	os.Mkdir(filepath.Join(dir, "unet"), 0o755)
	if _, err := m.Open("unet"); err == nil || !strings.Contains(err.Error(), "no weights file") {
		t.Errorf("component with no weights: %v", err)
	}
	var cfg struct {
		In int `json:"in_channels"`
	}
	if err := m.ReadConfig("unet", &cfg); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("missing config: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "unet", "config.json"), []byte(`{"in_channels": "four"}`), 0o644)
	err = m.ReadConfig("unet", &cfg)
	t.Logf("bad config value: %v", err)
	if err == nil || !strings.Contains(err.Error(), "config.json") || !strings.Contains(err.Error(), "in_channels") {
		t.Errorf("bad config value: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "unet", "config.json"), []byte(`{"in_channels": 4`), 0o644)
	if err := m.ReadConfig("unet", &cfg); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("bad config JSON: %v", err)
	}
}
