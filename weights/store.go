package weights

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"

	"gorgonia.org/tensor"
)

// Request is one tensor a model asked a Store for: the full checkpoint name and the shape it
// expected (nil when the caller gave none).
type Request struct {
	Name  string
	Shape []int
}

// String formats r the way manifests write it: "name\t[a, b]".
func (r Request) String() string { return r.Name + "\t" + formatShape(r.Shape) }

// backend is what a Store reads from: a parsed file, the synthetic generator, or a map.
type backend interface {
	// names lists the tensors held, in file order where there is one.
	names() []string
	// shape reports a tensor's shape; ok is false when it is absent. A backend that answers
	// any shape (unrestricted synthetic) returns (nil, true).
	shape(name string) (shape []int, ok bool)
	// load returns the tensor's values; shape has been checked against shape(name).
	load(name string, shape []int) (*tensor.Dense, error)
}

// Store hands out the tensors of one weights file (or of a synthetic or in-memory set) as
// float32 *tensor.Dense values (Tensor), or as IEEE half bits (TensorHalf; see WithHalf). It
// records which tensors were fetched (Unused, Requested, LoadedBytes).
// A Store is safe for concurrent use.
//
// Tensors of a memory-mapped file may alias the mapping: they stay valid until Close.
// Open with WithCopy to get tensors that outlive the Store.
type Store struct {
	desc    string // the file path, or a description such as "synthetic weights", for errors
	be      backend
	release func() error

	mu       sync.Mutex
	fetched  map[string]bool
	requests []Request
	closed   bool
	bytes    map[string]int64 // bytes handed out per tensor (LoadedBytes)
	half     bool             // WithHalf: PreferHalf reports true
	bf16     bool             // WithBF16: PreferBF16 reports true
	mapping  []byte           // the whole file mapping (mapFile), nil when the data is not mapped
}

func newStore(desc string, be backend, release func() error) *Store {
	return &Store{desc: desc, be: be, release: release, fetched: map[string]bool{}, bytes: map[string]int64{}}
}

// Path returns the file the Store reads, or a description of its source when it has no file.
func (s *Store) Path() string { return s.desc }

// Names returns the names of the tensors the Store holds, in file order where the format has
// one (else sorted). For unrestricted synthetic weights it returns the names requested so far.
func (s *Store) Names() []string {
	if n := s.be.names(); n != nil {
		return n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	seen := map[string]bool{}
	for _, r := range s.requests {
		if !seen[r.Name] {
			seen[r.Name] = true
			out = append(out, r.Name)
		}
	}
	return out
}

// Has reports whether the Store holds a tensor called name.
func (s *Store) Has(name string) bool {
	_, ok := s.be.shape(name)
	return ok
}

// Shape returns the stored shape of the tensor called name. ok is false when it is absent, or
// when the Store answers every shape (unrestricted synthetic weights).
func (s *Store) Shape(name string) (shape []int, ok bool) {
	sh, ok := s.be.shape(name)
	if !ok || sh == nil {
		return nil, false
	}
	return append([]int(nil), sh...), true
}

// StoredDtype returns the element type of the tensor called name in the Store's file ("F32",
// "F16", "BF16", "F64", "I64", …), or "" when it is absent or the Store reads no file. A layer
// that may keep a tensor as 16-bit floats uses it to do so only where that changes no value
// (an F16 tensor fetched with TensorHalf is exactly its float32 widening).
func (s *Store) StoredDtype(name string) string {
	if fb, ok := s.be.(*fileBackend); ok {
		if e, ok := fb.m[name]; ok {
			return e.dt.String()
		}
	}
	return ""
}

// Tensor returns the tensor called name as float32. When shape is given the stored shape must
// equal it exactly; the error then names the file, the tensor, and both shapes.
func (s *Store) Tensor(name string, shape ...int) (*tensor.Dense, error) {
	stored, err := s.request(name, shape)
	if err != nil {
		return nil, err
	}
	t, err := s.be.load(name, stored)
	if err != nil {
		return nil, fmt.Errorf("weights: tensor %q in %s: %w", name, s.desc, err)
	}
	s.loaded(name, 4*int64(numElements(stored)))
	return t, nil
}

// request records a request for name and checks it: the Store is open, the tensor present and
// its stored shape equal to shape (when given). It returns the shape to load.
func (s *Store) request(name string, shape []int) ([]int, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("weights: tensor %q requested from closed store %s", name, s.desc)
	}
	var req []int
	if shape != nil {
		req = append([]int{}, shape...)
	}
	s.requests = append(s.requests, Request{Name: name, Shape: req})
	s.mu.Unlock()

	for _, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("weights: tensor %q in %s: requested shape %s has a negative dimension", name, s.desc, formatShape(shape))
		}
	}
	stored, ok := s.be.shape(name)
	if !ok {
		return nil, s.missing(name)
	}
	if stored == nil { // the backend answers any shape
		if shape == nil {
			return nil, fmt.Errorf("weights: tensor %q from %s: a shape is required", name, s.desc)
		}
		stored = shape
	} else if shape != nil && !equalShape(stored, shape) {
		return nil, fmt.Errorf("weights: tensor %q in %s has shape %s, want %s", name, s.desc, formatShape(stored), formatShape(shape))
	}
	return stored, nil
}

// loaded marks name as fetched, holding n bytes.
func (s *Store) loaded(name string, n int64) {
	s.mu.Lock()
	s.fetched[name] = true
	s.bytes[name] = n
	s.mu.Unlock()
}

// missing builds the error for an absent tensor, with near names (same parent) as a hint.
func (s *Store) missing(name string) error {
	parent := name
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		parent = name[:i+1]
	} else {
		parent = ""
	}
	var near []string
	for _, n := range s.be.names() {
		if parent != "" && strings.HasPrefix(n, parent) {
			near = append(near, n)
			if len(near) == 4 {
				break
			}
		}
	}
	if len(near) > 0 {
		return fmt.Errorf("weights: tensor %q not found in %s (present under %q: %s)", name, s.desc, parent, strings.Join(near, ", "))
	}
	return fmt.Errorf("weights: tensor %q not found in %s", name, s.desc)
}

// Unused returns, sorted, the names of the tensors held that were never fetched successfully.
func (s *Store) Unused() []string {
	names := s.be.names()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, n := range names {
		if !s.fetched[n] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// CheckAllUsed returns an error when the Store holds tensors that were never fetched, apart
// from the names in ignore (exact checkpoint names, such as a buffer a model skips on purpose).
// Called after a model is built, an unused tensor usually means the model's config does not
// describe the checkpoint. The error names the file and up to five of the unused tensors, in
// sorted order, and carries no package prefix: callers add theirs ("unet: %w").
func (s *Store) CheckAllUsed(ignore ...string) error {
	var unused []string
	for _, n := range s.Unused() {
		if !slices.Contains(ignore, n) {
			unused = append(unused, n)
		}
	}
	if len(unused) == 0 {
		return nil
	}
	more := ""
	if len(unused) > 5 {
		unused, more = unused[:5], fmt.Sprintf(" and %d more", len(unused)-5)
	}
	return fmt.Errorf("%s holds tensors the config does not use: %s%s", s.desc, strings.Join(unused, ", "), more)
}

// Requested returns every Tensor request made so far, in order, including failed ones.
func (s *Store) Requested() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	copy(out, s.requests)
	return out
}

// View returns a View of the whole Store (empty prefix).
func (s *Store) View() View { return View{src: s} }

// ReleasePages takes the pages of the Store's memory-mapped file out of the process's resident
// memory (madvise MADV_DONTNEED on the private mapping): the tensors that alias the mapping stay
// valid, and their pages are read again, from the system's page cache or the disk, when next
// touched. A model that will be idle for a while (the text encoder once a prompt is encoded,
// the UNet while the VAE decodes) can so give its weights' memory back without being rebuilt;
// the next use pays for the page faults (about 0.1–0.3 s per GB from the page cache). Private
// changes to the mapped pages (there are none unless a caller wrote into an aliased tensor) are
// discarded. ReleasePages returns the bytes of the mapping advised, 0 when the Store holds no
// mapped file (synthetic or in-memory weights, WithCopy, other platforms) or is closed.
func (s *Store) ReleasePages() int64 {
	s.mu.Lock()
	defer s.mu.Unlock() // held so Close cannot unmap the range while it is advised
	if s.closed || len(s.mapping) == 0 {
		return 0
	}
	dropPages(s.mapping)
	return int64(len(s.mapping))
}

// Close releases the file mapping. Tensors that alias it must not be used afterwards.
// Close is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.release != nil {
		if err := s.release(); err != nil {
			return fmt.Errorf("weights: closing %s: %w", s.desc, err)
		}
	}
	return nil
}

func equalShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// formatShape writes a shape as manifests do: "[320, 4, 3, 3]".
func formatShape(s []int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, d := range s {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprint(&b, d)
	}
	b.WriteByte(']')
	return b.String()
}

// maxElements bounds the elements of one tensor so that its size in bytes (up to 8 per
// element) fits in an int on every platform, 32-bit ones included.
const maxElements = math.MaxInt / 8

// numElements returns the product of shape, or -1 when a dimension is negative or the product
// exceeds maxElements (checked before each multiplication, so it never wraps).
func numElements(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 || d != 0 && n > maxElements/d {
			return -1
		}
		n *= d
	}
	return n
}

// newDense wraps data (len = product of shape) in a *tensor.Dense without copying. gorgonia's
// tensor package panics on some shapes (e.g. zero-sized); that becomes an error.
func newDense(shape []int, data []float32) (t *tensor.Dense, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("cannot make a tensor of shape %s: %v", formatShape(shape), r)
		}
	}()
	if len(data) == 0 {
		return nil, fmt.Errorf("tensor of shape %s has no elements", formatShape(shape))
	}
	if len(shape) == 0 {
		return tensor.New(tensor.FromScalar(data[0])), nil
	}
	return tensor.New(tensor.WithShape(append([]int(nil), shape...)...), tensor.WithBacking(data)), nil
}

// memBackend holds tensors already in memory (FromTensors).
type memBackend struct {
	order []string
	m     map[string]*tensor.Dense
}

func (b *memBackend) names() []string { return append([]string(nil), b.order...) }

func (b *memBackend) shape(name string) ([]int, bool) {
	t, ok := b.m[name]
	if !ok {
		return nil, false
	}
	return []int(t.Shape()), true
}

func (b *memBackend) load(name string, _ []int) (*tensor.Dense, error) { return b.m[name], nil }

// FromTensors makes a Store over tensors already in memory (float32 only), for tests and for
// plugging weights from elsewhere into model constructors. desc names the set in errors.
func FromTensors(desc string, tensors map[string]*tensor.Dense) (*Store, error) {
	b := &memBackend{m: map[string]*tensor.Dense{}}
	for name, t := range tensors {
		if t == nil || t.Dtype() != tensor.Float32 {
			return nil, fmt.Errorf("weights: FromTensors %s: tensor %q is not a float32 tensor", desc, name)
		}
		b.order = append(b.order, name)
		b.m[name] = t
	}
	sort.Strings(b.order)
	return newStore(desc, b, nil), nil
}
