// Package golden reads the reference tensors in testdata (safetensors files written by the
// Python reference stack) in any of the dtypes they use, and compares results against them.
// It is for tests: production code reads weights through package weights.
package golden

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"testing"
)

// Tensor is one reference tensor, widened to float64 whatever its stored dtype.
type Tensor struct {
	Name  string
	DType string
	Shape []int
	Data  []float64
}

// F32 returns the tensor's values as float32.
func (t *Tensor) F32() []float32 {
	out := make([]float32, len(t.Data))
	for i, v := range t.Data {
		out[i] = float32(v)
	}
	return out
}

// Ints returns the tensor's values as ints (for I64 ids and timesteps).
func (t *Tensor) Ints() []int {
	out := make([]int, len(t.Data))
	for i, v := range t.Data {
		out[i] = int(v)
	}
	return out
}

// File is a parsed safetensors file held in memory.
type File struct {
	Path    string
	tensors map[string]*Tensor
}

// Dir returns the repository's testdata directory, found from this source file's location so
// tests in any package can use it.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata")
}

// Path joins elem onto the testdata directory.
func Path(elem ...string) string { return filepath.Join(append([]string{Dir()}, elem...)...) }

type headerEntry struct {
	DType   string  `json:"dtype"`
	Shape   []int   `json:"shape"`
	Offsets []int64 `json:"data_offsets"`
}

// Open reads a whole safetensors file.
func Open(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 8 {
		return nil, fmt.Errorf("golden: %s: too short for a safetensors header", path)
	}
	n := binary.LittleEndian.Uint64(b)
	if n > uint64(len(b)-8) {
		return nil, fmt.Errorf("golden: %s: header length %d exceeds file size", path, n)
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		return nil, fmt.Errorf("golden: %s: header: %w", path, err)
	}
	data := b[8+n:]
	f := &File{Path: path, tensors: map[string]*Tensor{}}
	for name, raw := range hdr {
		if name == "__metadata__" {
			continue
		}
		var e headerEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, fmt.Errorf("golden: %s: tensor %s: %w", path, name, err)
		}
		if len(e.Offsets) != 2 || e.Offsets[0] < 0 || e.Offsets[1] < e.Offsets[0] || e.Offsets[1] > int64(len(data)) {
			return nil, fmt.Errorf("golden: %s: tensor %s: bad offsets %v", path, name, e.Offsets)
		}
		buf := data[e.Offsets[0]:e.Offsets[1]]
		count := 1
		for _, d := range e.Shape {
			count *= d
		}
		t := &Tensor{Name: name, DType: e.DType, Shape: e.Shape, Data: make([]float64, count)}
		size := map[string]int{"F64": 8, "I64": 8, "F32": 4, "I32": 4, "F16": 2, "U8": 1}[e.DType]
		if size == 0 {
			return nil, fmt.Errorf("golden: %s: tensor %s: unsupported dtype %s", path, name, e.DType)
		}
		if len(buf) != count*size {
			return nil, fmt.Errorf("golden: %s: tensor %s: %d bytes for %d elements of %s", path, name, len(buf), count, e.DType)
		}
		for i := range t.Data {
			p := buf[i*size:]
			switch e.DType {
			case "F64":
				t.Data[i] = math.Float64frombits(binary.LittleEndian.Uint64(p))
			case "I64":
				t.Data[i] = float64(int64(binary.LittleEndian.Uint64(p)))
			case "F32":
				t.Data[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(p)))
			case "I32":
				t.Data[i] = float64(int32(binary.LittleEndian.Uint32(p)))
			case "F16":
				t.Data[i] = float64(f16(binary.LittleEndian.Uint16(p)))
			case "U8":
				t.Data[i] = float64(p[0])
			}
		}
		f.tensors[name] = t
	}
	return f, nil
}

func f16(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := int(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0:
		return math.Float32frombits(sign) + float32(mant)*float32(math.Ldexp(1, -24))*sgn(sign)
	case exp == 31:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	default:
		return math.Float32frombits(sign | uint32(exp-15+127)<<23 | mant<<13)
	}
}

func sgn(s uint32) float32 {
	if s != 0 {
		return -1
	}
	return 1
}

// Names lists the tensors in the file, sorted.
func (f *File) Names() []string {
	out := make([]string, 0, len(f.tensors))
	for n := range f.tensors {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Get returns the named tensor or an error naming the file.
func (f *File) Get(name string) (*Tensor, error) {
	t, ok := f.tensors[name]
	if !ok {
		return nil, fmt.Errorf("golden: %s: no tensor %q", f.Path, name)
	}
	return t, nil
}

// MustOpen opens path or fails the test.
func MustOpen(tb testing.TB, path string) *File {
	tb.Helper()
	f, err := Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// Must returns the named tensor or fails the test.
func (f *File) Must(tb testing.TB, name string) *Tensor {
	tb.Helper()
	t, err := f.Get(name)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// MaxAbsDiff returns the largest |got-want| and the largest |want|. Lengths must match.
func MaxAbsDiff(got []float32, want []float64) (maxErr, maxRef float64) {
	for i, w := range want {
		d := math.Abs(float64(got[i]) - w)
		if d > maxErr || math.IsNaN(d) {
			maxErr = d
			if math.IsNaN(d) {
				maxErr = math.Inf(1)
			}
		}
		if a := math.Abs(w); a > maxRef {
			maxRef = a
		}
	}
	return
}

// Within is the one form in which every numerical test logs the error it measured,
// "label: <kind> error E (limit L)" (kind names the measure: "max abs", "relative", "relative
// RMS", …), so `go test -v | grep 'error .* (limit'` lists them all. It fails tb when E exceeds L
// or is NaN, and reports whether it is within.
func Within(tb testing.TB, label, kind string, measured, limit float64) bool {
	tb.Helper()
	tb.Logf("%s: %s error %.3g (limit %.3g)", label, kind, measured, limit)
	if !(measured <= limit) {
		tb.Errorf("%s: %s error %.3g exceeds %.3g", label, kind, measured, limit)
		return false
	}
	return true
}

// Check compares got with the reference tensor want using the project's tolerance rule
// |got-want| ≤ tol × max(1, max|want|) per element, logs the measured error, and fails the
// test on a length or tolerance mismatch. It returns the measured max abs error.
func Check(tb testing.TB, label string, got []float32, want *Tensor, tol float64) float64 {
	tb.Helper()
	if len(got) != len(want.Data) {
		tb.Errorf("%s: got %d values, reference %s has %d (shape %v)", label, len(got), want.Name, len(want.Data), want.Shape)
		return math.Inf(1)
	}
	maxErr, maxRef := MaxAbsDiff(got, want.Data)
	limit := tol * math.Max(1, maxRef)
	tb.Logf("%s: max abs error %.3g (limit %.3g, max|ref| %.3g)", label, maxErr, limit, maxRef)
	if !(maxErr <= limit) {
		tb.Errorf("%s: max abs error %.3g exceeds %.3g", label, maxErr, limit)
	}
	return maxErr
}
