package weights

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// pickleInt is a pickle opcode pushing v (LONG1 for anything, as pickle writes big ints).
func pickleInt(v int64) string {
	b := binary.LittleEndian.AppendUint64(nil, uint64(v))
	return "\x8a\x08" + string(b)
}

// tupleOf pickles a tuple of ints.
func tupleOf(v ...int64) string {
	s := "("
	for _, x := range v {
		s += pickleInt(x)
	}
	return s + "t"
}

// oddTensorZip is tinyTorchZip with the tensor's storage offset, size and stride replaced.
func oddTensorZip(t *testing.T, numel, offset int64, size, stride []int64) []byte {
	id := "(" + pickleStr("storage") + "ctorch\nFloatStorage\n" + pickleStr("0") + pickleStr("cpu") + pickleInt(numel) + "tQ"
	pkl := "\x80\x02ccollections\nOrderedDict\n)R(" + pickleStr("w") +
		"ctorch._utils\n_rebuild_tensor_v2\n(" + id + pickleInt(offset) + tupleOf(size...) + tupleOf(stride...) +
		"\x89ccollections\nOrderedDict\n)RtRu."
	return zipOf(t, map[string]string{
		"archive/data.pkl": pkl,
		"archive/data/0":   string(storageBytes()),
		"archive/version":  "3\n",
	})
}

// TestPickleOverflow: sizes, strides, offsets and element counts that would overflow int when
// multiplied are errors (they were checked only after multiplying), on 32-bit platforms too.
func TestPickleOverflow(t *testing.T) {
	const big = 1<<31 - 1
	cases := map[string][]byte{
		"size product":       oddTensorZip(t, 6, 0, []int64{big, big, big, 2}, []int64{0, 0, 0, 0}),
		"size product zero":  oddTensorZip(t, 6, 0, []int64{big, big, big, 0}, []int64{1, 1, 1, 1}),
		"huge dimension":     oddTensorZip(t, 6, 0, []int64{1 << 40}, []int64{1}),
		"huge stride":        oddTensorZip(t, 6, 0, []int64{2, 3}, []int64{1 << 40, 1}),
		"huge offset":        oddTensorZip(t, 6, 1<<62, []int64{2, 3}, []int64{1, 2}),
		"offset at the end":  oddTensorZip(t, 6, 5, []int64{2, 3}, []int64{1, 2}),
		"huge storage":       oddTensorZip(t, 1<<40, 0, []int64{2, 3}, []int64{1, 2}),
		"negative dimension": oddTensorZip(t, 6, 0, []int64{-2, -3}, []int64{1, 2}),
	}
	dir := t.TempDir()
	for name, data := range cases {
		p := filepath.Join(dir, "w.bin")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := OpenFile(p)
		if err == nil {
			_, err = s.Tensor("w")
			s.Close()
		}
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		t.Logf("%s: %v", name, err)
	}
}

// TestSafetensorsOverflow: a shape whose product wraps around is an error, not a tensor of the
// wrapped size.
func TestSafetensorsOverflow(t *testing.T) {
	header := []byte(`{"w":{"dtype":"F32","shape":[2147483647,2147483647,2147483647,4],"data_offsets":[0,0]}}`)
	for len(header)%8 != 0 {
		header = append(header, ' ')
	}
	p := filepath.Join(t.TempDir(), "w.safetensors")
	if err := os.WriteFile(p, rawSafetensors(header, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := OpenFile(p); err == nil {
		s.Close()
		t.Fatal("no error for a shape of 2^93 elements")
	} else {
		t.Log(err)
	}
}

func TestNumElements(t *testing.T) {
	for _, c := range []struct {
		shape []int
		want  int
	}{
		{nil, 1}, {[]int{2, 3}, 6}, {[]int{0, 5}, 0}, {[]int{-1, 2}, -1},
		{[]int{maxDim, maxDim, maxDim}, -1}, {[]int{maxElements, 2}, -1}, {[]int{maxElements}, maxElements},
	} {
		if got := numElements(c.shape); got != c.want {
			t.Errorf("numElements(%v) = %d, want %d", c.shape, got, c.want)
		}
	}
}
