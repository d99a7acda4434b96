package weights

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// PyTorch checkpoints are read with gopickle's unpickler but our own storage handling, so that
// tensor data is never decoded up front: in the zip format each uncompressed storage record is
// a slice of the (mapped) file, and in the legacy format each storage follows the pickles.
// A 2.3 GB fp32 UNet is thus never held twice.

// torchStorageTypes maps the storage classes torch pickles to dtypes.
var torchStorageTypes = map[string]dtype{
	"FloatStorage":    dtF32,
	"HalfStorage":     dtF16,
	"BFloat16Storage": dtBF16,
	"DoubleStorage":   dtF64,
	"LongStorage":     dtI64,
	"IntStorage":      dtI32,
	"ShortStorage":    dtI16,
	"CharStorage":     dtI8,
	"ByteStorage":     dtU8,
	"BoolStorage":     dtBool,
}

type storageClass struct{ dt dtype }

type storageRef struct {
	dt    dtype
	numel int
	data  []byte // numel*dt.size() bytes once resolved
}

type torchTensor struct {
	storage *storageRef
	offset  int
	size    []int
	stride  []int
}

// rebuildTensor is torch._utils._rebuild_tensor_v2 (and the v1 form, without the last args).
type rebuildTensor struct{}

func (rebuildTensor) Call(args ...interface{}) (interface{}, error) {
	if len(args) < 4 {
		return nil, fmt.Errorf("_rebuild_tensor: %d arguments", len(args))
	}
	st, ok := args[0].(*storageRef)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor: first argument is %T, not a storage", args[0])
	}
	off, ok := args[1].(int)
	if !ok || off < 0 {
		return nil, fmt.Errorf("_rebuild_tensor: bad storage offset %v", args[1])
	}
	size, err := intTuple(args[2])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor: size: %w", err)
	}
	stride, err := intTuple(args[3])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor: stride: %w", err)
	}
	if len(size) != len(stride) {
		return nil, fmt.Errorf("_rebuild_tensor: size %v and stride %v differ in rank", size, stride)
	}
	return &torchTensor{storage: st, offset: off, size: size, stride: stride}, nil
}

// rebuildParameter is torch._utils._rebuild_parameter: a Parameter around its data tensor.
type rebuildParameter struct{}

func (rebuildParameter) Call(args ...interface{}) (interface{}, error) {
	if len(args) < 1 {
		return nil, fmt.Errorf("_rebuild_parameter: no arguments")
	}
	return args[0], nil
}

type noneCallable struct{}

func (noneCallable) Call(...interface{}) (interface{}, error) { return nil, nil }

func intTuple(v interface{}) ([]int, error) {
	t, ok := v.(*types.Tuple)
	if !ok {
		return nil, fmt.Errorf("%T is not a tuple", v)
	}
	out := make([]int, t.Len())
	for i := range out {
		n, ok := t.Get(i).(int)
		if !ok || n < 0 || n > maxDim {
			return nil, fmt.Errorf("bad element %v", t.Get(i))
		}
		out[i] = n
	}
	return out, nil
}

func findTorchClass(module, name string) (interface{}, error) {
	switch module + "." + name {
	case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
		return rebuildTensor{}, nil
	case "torch._utils._rebuild_parameter":
		return rebuildParameter{}, nil
	case "torch.nn.backends.thnn._get_thnn_function_backend":
		return noneCallable{}, nil
	}
	if module == "torch" {
		if dt, ok := torchStorageTypes[name]; ok {
			return storageClass{dt}, nil
		}
	}
	return types.NewGenericClass(module, name), nil
}

// storageArgs checks a persistent id ('storage', class, key, location, numel, ...).
func storageArgs(id interface{}, minLen int) (t *types.Tuple, dt dtype, key string, numel int, err error) {
	t, ok := id.(*types.Tuple)
	if !ok || t.Len() < minLen {
		return nil, 0, "", 0, fmt.Errorf("unexpected persistent id %v", id)
	}
	if s, _ := t.Get(0).(string); s != "storage" {
		return nil, 0, "", 0, fmt.Errorf("unexpected persistent id kind %v", t.Get(0))
	}
	sc, ok := t.Get(1).(storageClass)
	if !ok {
		return nil, 0, "", 0, fmt.Errorf("unsupported storage type %v", t.Get(1))
	}
	key, ok1 := t.Get(2).(string)
	numel, ok2 := t.Get(4).(int)
	if !ok1 || !ok2 || numel < 0 || numel > maxDim {
		return nil, 0, "", 0, fmt.Errorf("bad storage record %v", id)
	}
	return t, sc.dt, key, numel, nil
}

// unpickle runs gopickle on r, turning its panics into errors.
func unpickle(r io.Reader, persistent func(interface{}) (interface{}, error)) (v interface{}, err error) {
	defer func() {
		if p := recover(); p != nil {
			v, err = nil, fmt.Errorf("malformed pickle: %v", p)
		}
	}()
	u := pickle.NewUnpickler(r)
	u.FindClass = findTorchClass
	u.PersistentLoad = persistent
	return u.Load()
}

// parseTorchZip reads torch.save's zip format: archive/data.pkl plus archive/data/<key> records.
func parseTorchZip(data []byte) (*fileBackend, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("not a readable zip checkpoint: %w", err)
	}
	var pkl *zip.File
	records := map[string]*zip.File{}
	for _, f := range zr.File {
		dir, base := path.Split(f.Name)
		if base == "data.pkl" && strings.Count(dir, "/") <= 1 {
			pkl = f
		}
		if strings.HasSuffix(dir, "/data/") || dir == "data/" {
			records[base] = f
		}
		if base == "constants.pkl" {
			return nil, fmt.Errorf("TorchScript archives are not supported")
		}
	}
	if pkl == nil {
		return nil, fmt.Errorf("zip has no data.pkl: not a PyTorch checkpoint")
	}
	rc, err := pkl.Open()
	if err != nil {
		return nil, fmt.Errorf("data.pkl: %w", err)
	}
	pdata, err := io.ReadAll(io.LimitReader(rc, 1<<30))
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("data.pkl: %w", err)
	}
	if err := checkPickle(pdata); err != nil {
		return nil, fmt.Errorf("data.pkl: %w", err)
	}
	storages := map[string]*storageRef{}
	obj, err := unpickle(bytes.NewReader(pdata), func(id interface{}) (interface{}, error) {
		_, dt, key, numel, err := storageArgs(id, 5)
		if err != nil {
			return nil, err
		}
		if s, ok := storages[key]; ok {
			return s, nil
		}
		f, ok := records[key]
		if !ok {
			return nil, fmt.Errorf("storage record %q missing from the zip", key)
		}
		need := uint64(numel) * uint64(dt.size())
		if f.UncompressedSize64 < need {
			return nil, fmt.Errorf("storage record %q holds %d bytes, want %d", key, f.UncompressedSize64, need)
		}
		s := &storageRef{dt: dt, numel: numel}
		if s.data, err = zipRecord(data, f, need); err != nil {
			return nil, fmt.Errorf("storage record %q: %w", key, err)
		}
		storages[key] = s
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	return torchEntries(obj)
}

// zipRecord returns the first n bytes of f: a slice of data when stored uncompressed.
func zipRecord(data []byte, f *zip.File, n uint64) ([]byte, error) {
	if f.Method == zip.Store {
		off, err := f.DataOffset()
		if err != nil {
			return nil, err
		}
		if off < 0 || uint64(off) > uint64(len(data)) || n > uint64(len(data))-uint64(off) {
			return nil, fmt.Errorf("extends past the end of the file")
		}
		return data[off : uint64(off)+n : uint64(off)+n], nil
	}
	if n > 1100*f.CompressedSize64+1<<16 { // beyond deflate's ~1032:1 ratio: corrupt sizes
		return nil, fmt.Errorf("claims %d bytes from %d compressed", n, f.CompressedSize64)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// legacyMagic is the pickled magic number torch.save wrote first in the pre-zip format.
const legacyMagic = "1950a86a20f9469cfc6c"

// parseTorchLegacy reads the pre-zip format: pickles of magic, protocol version, system info,
// the object, the storage keys; then each storage as an 8-byte count and its raw data.
func parseTorchLegacy(data []byte) (*fileBackend, error) {
	r := bytes.NewReader(data)
	// Each pickle in the sequence is checked before gopickle reads it.
	next := func(r *bytes.Reader, persistent func(interface{}) (interface{}, error)) (interface{}, error) {
		if err := checkPickle(data[len(data)-r.Len():]); err != nil {
			return nil, err
		}
		return unpickle(r, persistent)
	}
	magic, err := next(r, nil)
	if err != nil {
		return nil, fmt.Errorf("not a PyTorch checkpoint: %w", err)
	}
	if m, ok := magic.(interface{ Text(int) string }); !ok || m.Text(16) != legacyMagic {
		return nil, fmt.Errorf("not a PyTorch checkpoint: bad magic number")
	}
	if v, err := next(r, nil); err != nil || v != 1001 {
		return nil, fmt.Errorf("unsupported legacy PyTorch protocol version %v (%v)", v, err)
	}
	if _, err := next(r, nil); err != nil {
		return nil, fmt.Errorf("legacy checkpoint system info: %w", err)
	}
	storages := map[string]*storageRef{}
	obj, err := next(r, func(id interface{}) (interface{}, error) {
		t, dt, key, numel, err := storageArgs(id, 6)
		if err != nil {
			return nil, err
		}
		if t.Get(5) != nil {
			return nil, fmt.Errorf("storage views are not supported (storage %q)", key)
		}
		if s, ok := storages[key]; ok {
			return s, nil
		}
		s := &storageRef{dt: dt, numel: numel}
		storages[key] = s
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	keysObj, err := next(r, nil)
	if err != nil {
		return nil, fmt.Errorf("legacy checkpoint storage keys: %w", err)
	}
	keys, ok := keysObj.(*types.List)
	if !ok {
		return nil, fmt.Errorf("legacy checkpoint storage keys are %T, not a list", keysObj)
	}
	pos := len(data) - r.Len()
	for _, k := range *keys {
		key, _ := k.(string)
		s, ok := storages[key]
		if !ok {
			return nil, fmt.Errorf("storage %v listed but never used", k)
		}
		if len(data)-pos < 8 {
			return nil, fmt.Errorf("truncated at storage %q", key)
		}
		count := binary.LittleEndian.Uint64(data[pos:])
		pos += 8
		if count != uint64(s.numel) {
			return nil, fmt.Errorf("storage %q holds %d elements, the pickle says %d", key, count, s.numel)
		}
		if s.numel > maxElements {
			return nil, fmt.Errorf("storage %q of %d elements is implausibly large", key, s.numel)
		}
		n := s.numel * s.dt.size()
		if len(data)-pos < n {
			return nil, fmt.Errorf("truncated in storage %q", key)
		}
		s.data = data[pos : pos+n : pos+n]
		pos += n
	}
	return torchEntries(obj)
}

// torchEntries turns an unpickled state dict (possibly under "state_dict") into entries.
func torchEntries(obj interface{}) (*fileBackend, error) {
	var kv [][2]interface{}
	collect := func(o interface{}) bool {
		kv = kv[:0]
		switch d := o.(type) {
		case *types.OrderedDict:
			for e := d.List.Front(); e != nil; e = e.Next() {
				ent := e.Value.(*types.OrderedDictEntry)
				kv = append(kv, [2]interface{}{ent.Key, ent.Value})
			}
		case *types.Dict:
			for _, ent := range *d {
				kv = append(kv, [2]interface{}{ent.Key, ent.Value})
			}
		default:
			return false
		}
		return true
	}
	if !collect(obj) {
		return nil, fmt.Errorf("checkpoint holds a %T, not a state dict", obj)
	}
	for _, p := range kv {
		if p[0] == "state_dict" {
			if !collect(p[1]) {
				return nil, fmt.Errorf("checkpoint's state_dict is a %T", p[1])
			}
			break
		}
	}
	be := &fileBackend{m: map[string]*entry{}}
	for _, p := range kv {
		name, ok := p[0].(string)
		if !ok {
			return nil, fmt.Errorf("state dict key %v is not a string", p[0])
		}
		t, ok := p[1].(*torchTensor)
		if !ok {
			continue // non-tensor entries (e.g. step counters) are not weights
		}
		e, err := t.entry()
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		if err := be.add(name, e); err != nil {
			return nil, err
		}
	}
	return be, nil
}

// entry checks that the tensor lies within its storage and reports whether it is contiguous.
func (t *torchTensor) entry() (*entry, error) {
	s := t.storage
	if s.data == nil && s.numel > 0 {
		return nil, fmt.Errorf("storage data missing")
	}
	n, last, contiguous, want := 1, 0, true, 1
	for k := len(t.size) - 1; k >= 0; k-- {
		if t.size[k] != 0 && n > maxElements/t.size[k] {
			return nil, fmt.Errorf("shape %v too large", t.size)
		}
		n *= t.size[k]
		if t.size[k] > 1 && t.stride[k] > 0 && t.size[k]-1 > s.numel/t.stride[k] {
			return nil, fmt.Errorf("shape %v stride %v overruns its storage of %d elements", t.size, t.stride, s.numel)
		}
		last += (t.size[k] - 1) * t.stride[k]
		if last > s.numel {
			return nil, fmt.Errorf("shape %v stride %v overruns its storage of %d elements", t.size, t.stride, s.numel)
		}
		if t.size[k] != 1 && t.stride[k] != want {
			contiguous = false
		}
		want *= t.size[k]
	}
	if n == 0 {
		return &entry{dt: s.dt, shape: t.size}, nil
	}
	if n > s.numel && n > 1<<20 {
		// Only stride-0 (expanded) tensors can hold more elements than their storage; a huge
		// one is a corrupt file, and gathering it would allocate without bound.
		return nil, fmt.Errorf("shape %v holds %d elements but its storage only %d", t.size, n, s.numel)
	}
	if t.offset >= s.numel || last >= s.numel-t.offset {
		return nil, fmt.Errorf("shape %v stride %v offset %d overruns its storage of %d elements", t.size, t.stride, t.offset, s.numel)
	}
	e := &entry{dt: s.dt, shape: t.size, data: s.data[t.offset*s.dt.size():]}
	if !contiguous {
		e.strides = t.stride
	}
	return e, nil
}
