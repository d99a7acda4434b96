package weights

import (
	"encoding/binary"
	"testing"
)

// fuzzOpen parses data as a weights file and fetches every tensor: it may fail, never panic.
func fuzzOpen(t *testing.T, data []byte) {
	s, err := openData("fuzz", data, func() error { return nil })
	if err != nil {
		return
	}
	for _, name := range s.Names() {
		sh, _ := s.Shape(name)
		if d, err := s.Tensor(name); err == nil && d.Shape().TotalSize() != numElements(sh) {
			t.Fatalf("%s: tensor of %d elements for shape %v", name, d.Shape().TotalSize(), sh)
		}
	}
	s.Unused()
}

func FuzzSafetensors(f *testing.F) {
	f.Add(buildSafetensors(map[string]stTensor{
		"a.weight": {"F32", []int{2, 2}, le32(1, 2, 3, 4)},
		"b":        {"F16", []int{3}, []byte{0, 0x3c, 0, 0xc0, 0xff, 0x7b}},
		"c":        {"BF16", []int{1}, []byte{0x80, 0x3f}},
		"ids":      {"I64", []int{2}, le64(7, -1)},
	}))
	f.Add(buildSafetensors(map[string]stTensor{"s": {"F32", []int{}, le32(5)}, "z": {"F32", []int{0, 3}, nil}}))
	f.Add(rawSafetensors([]byte(`{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`), le32(1)))
	f.Add(binary.LittleEndian.AppendUint64(nil, 2))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := openData("fuzz", data, func() error { return nil })
		if err == nil && s.be.(*fileBackend) == nil {
			t.Fatal("nil backend")
		}
		fuzzOpen(t, data)
	})
}

func FuzzTorchBin(f *testing.F) {
	// Small hand-made checkpoints: the real test files are too big for the fuzzer to minimise.
	f.Add(tinyTorchZip(f))
	f.Add(tinyTorchLegacy())
	f.Add(stateDictPickle(false))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 0 && data[0] != 'P' && data[0] != 0x80 {
			return // not this target's formats
		}
		fuzzOpen(t, data)
	})
}
