package weights

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// Hand-written PyTorch checkpoints holding one transposed (non-contiguous) tensor "w" of shape
// (2, 3) and stride (1, 2) over a FloatStorage of 0..5, so w = [[0 2 4] [1 3 5]].

func pickleStr(s string) string {
	return "X" + string(binary.LittleEndian.AppendUint32(nil, uint32(len(s)))) + s
}

func stateDictPickle(legacy bool) []byte {
	id := "(" + pickleStr("storage") + "ctorch\nFloatStorage\n" + pickleStr("0") + pickleStr("cpu") + "K\x06"
	if legacy {
		id += "N" // no view metadata
	}
	id += "tQ"
	return []byte("\x80\x02ccollections\nOrderedDict\n)R(" + pickleStr("w") +
		"ctorch._utils\n_rebuild_tensor_v2\n(" + id + "K\x00K\x02K\x03\x86K\x01K\x02\x86\x89ccollections\nOrderedDict\n)RtRu.")
}

func storageBytes() []byte { return le32(0, 1, 2, 3, 4, 5) }

func tinyTorchZip(t testing.TB) []byte {
	return zipOf(t, map[string]string{
		"archive/data.pkl": string(stateDictPickle(false)),
		"archive/data/0":   string(storageBytes()),
		"archive/version":  "3\n",
	})
}

func tinyTorchLegacy() []byte {
	var b []byte
	b = append(b, "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."...) // magic number
	b = append(b, "\x80\x02M\xe9\x03."...)                                        // protocol 1001
	b = append(b, "\x80\x02}."...)                                                // system info
	b = append(b, stateDictPickle(true)...)
	b = append(b, "\x80\x02]("+pickleStr("0")+"e."...) // storage keys
	b = binary.LittleEndian.AppendUint64(b, 6)
	return append(b, storageBytes()...)
}

func TestTorchStrided(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string][]byte{"zip.bin": tinyTorchZip(t), "legacy.bin": tinyTorchLegacy()} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		s := mustOpenFile(t, p)
		w, err := s.Tensor("w", 2, 3)
		if err != nil {
			t.Fatal(err)
		}
		got := f32(t, w)
		want := []float32{0, 2, 4, 1, 3, 5}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: w = %v, want %v", name, got, want)
			}
		}
		t.Logf("%s: transposed tensor read as %v", name, got)
	}
}
