package weights

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
)

// SyntheticHeader returns the length-prefixed JSON header of a safetensors file holding the
// tensors of m in the order given, as F32 or, with fp16, as F16, padded with spaces to a multiple
// of 8 bytes. The header is deterministic (JSON object keys come out sorted), so comparing it with
// a file's first bytes tells whether that file already holds these tensors.
func SyntheticHeader(m []Request, fp16 bool) ([]byte, error) {
	type info struct {
		Dtype   string   `json:"dtype"`
		Shape   []int    `json:"shape"`
		Offsets [2]int64 `json:"data_offsets"`
	}
	header := map[string]any{"__metadata__": map[string]string{
		"format": "pt", "source": "smallsd synthetic weights (testdata/SYNTHETIC.md)"}}
	size, dt := int64(4), "F32"
	if fp16 {
		size, dt = 2, "F16"
	}
	var off int64
	for _, r := range m {
		if _, dup := header[r.Name]; dup {
			return nil, fmt.Errorf("weights: tensor %q listed twice", r.Name)
		}
		n := numElements(r.Shape)
		if n < 0 {
			return nil, fmt.Errorf("weights: tensor %q: shape %v has a negative or too large element count", r.Name, r.Shape)
		}
		header[r.Name] = info{dt, r.Shape, [2]int64{off, off + int64(n)*size}}
		off += int64(n) * size
	}
	js, err := json.Marshal(header)
	if err != nil {
		return nil, err
	}
	for len(js)%8 != 0 {
		js = append(js, ' ')
	}
	return append(binary.LittleEndian.AppendUint64(nil, uint64(len(js))), js...), nil
}

// WriteSynthetic writes the tensors of m with their synthetic values (FillSynthetic) to a
// safetensors file at path, as float32 or, with fp16, rounded to fp16 (nearest even), one
// tensor in memory at a time. It writes a temporary file first and renames it to path when
// complete, so an interrupted write never leaves a truncated file under that name.
func WriteSynthetic(path string, m []Request, fp16 bool) error {
	header, err := SyntheticHeader(m, fp16)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	_, err = w.Write(header)
	var buf []float32
	var raw []byte
	for _, r := range m {
		if err != nil {
			break
		}
		n := numElements(r.Shape) // checked by SyntheticHeader
		buf = append(buf[:0], make([]float32, n)...)
		FillSynthetic(buf, r.Name, r.Shape)
		raw = raw[:0]
		for _, v := range buf {
			if fp16 {
				raw = binary.LittleEndian.AppendUint16(raw, Float32ToHalf(v))
			} else {
				raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
			}
		}
		_, err = w.Write(raw)
	}
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("weights: writing %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}
