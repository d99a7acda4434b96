package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// A simulator of the AMX tile kernel: it interprets the operation list amx_amd64.s was generated
// from (amx_program_test.go, written by asmgen from the same list) on Go slices, so that the
// kernel's addressing, strides, loop and tile configuration are tested on machines without AMX.
// Every memory access is bounds-checked against the slice its pointer came from; the tile
// configuration is validated as LDTILECFG does (palette 1) and TDPBF16PS's shapes as the Intel SDM
// requires; TDPBF16PS itself computes as amxDot (the SDM's order, DAZ/FTZ).

// amxOp is one operation of a tile program (see asmgen/amx.go for the kinds).
type amxOp struct {
	Kind  string
	R, S  string
	T     [3]int
	Imm   int
	Label string
	Arg   string
}

// amxSimArg is one argument of a simulated call: a slice (mem, viewed as 32-bit words) or an
// integer.
type amxSimArg struct {
	mem  []uint32
	n    int
	ptrs map[int][]uint32 // the pointers mem holds: byte offset → the memory it points to
}

// amxSimVal is a register: an integer (mem < 0) or a byte offset into memory mem.
type amxSimVal struct{ mem, v int }

// amxTile is one tile register: its configured shape and its 16 rows of 64 bytes (16 words).
type amxTile struct {
	rows, colsb int
	d           [16][16]uint32
}

// amxSim is the machine state of one simulated call.
type amxSim struct {
	mems       [][]uint32
	ptrs       map[int]map[int][]uint32 // per memory, the pointers it holds (amxSimArg.ptrs)
	regs       map[string]amxSimVal
	tiles      [8]amxTile
	configured bool
}

// amxSimulate runs prog (arguments named by names, values args) with the tile configuration
// cfg, returning the first fault: an access outside its slice, a bad configuration or shape, a
// tile left configured at RET, or more than maxSteps operations.
func amxSimulate(prog []amxOp, cfg [64]byte, names []string, args []amxSimArg, maxSteps int) error {
	s := &amxSim{regs: map[string]amxSimVal{}, ptrs: map[int]map[int][]uint32{}}
	labels := map[string]int{}
	for i, op := range prog {
		if op.Kind == "label" {
			labels[op.Label] = i
		}
	}
	jump := func(l string) (int, error) {
		i, ok := labels[l]
		if !ok {
			return 0, fmt.Errorf("no label %q", l)
		}
		return i, nil
	}
	reg := func(r string) (amxSimVal, error) {
		v, ok := s.regs[r]
		if !ok {
			return v, fmt.Errorf("register %s read before it was set", r)
		}
		return v, nil
	}
	intReg := func(r string) (int, error) {
		v, err := reg(r)
		if err == nil && v.mem >= 0 {
			err = fmt.Errorf("register %s holds a pointer where an integer is needed", r)
		}
		return v.v, err
	}
	for pc, steps := 0, 0; pc < len(prog); pc++ {
		if steps++; steps > maxSteps {
			return fmt.Errorf("more than %d operations", maxSteps)
		}
		op := prog[pc]
		err := func() error {
			switch op.Kind {
			case "arg":
				i := op.Imm / 8
				if op.Imm%8 != 0 || i >= len(names) || names[i] != op.Arg {
					return fmt.Errorf("argument %s at frame offset %d does not match the declaration %q", op.Arg, op.Imm, names)
				}
				if a := args[i]; a.mem != nil {
					s.mems = append(s.mems, a.mem)
					s.regs[op.R] = amxSimVal{len(s.mems) - 1, 0}
					if a.ptrs != nil {
						s.ptrs[len(s.mems)-1] = a.ptrs
					}
				} else {
					s.regs[op.R] = amxSimVal{-1, a.n}
				}
			case "ldq": // a 64-bit integer from memory (two words, little endian)
				v, err := reg(op.S)
				if err != nil {
					return err
				}
				if v.mem < 0 {
					return fmt.Errorf("load from %s, which holds no pointer", op.S)
				}
				mem, off := s.mems[v.mem], v.v+op.Imm
				if off%4 != 0 || off < 0 || off+8 > 4*len(mem) {
					return fmt.Errorf("bytes [%d, %d) outside the %d-byte slice", off, off+8, 4*len(mem))
				}
				if p, ok := s.ptrs[v.mem][off]; ok { // a pointer: to its memory, bounds and all
					s.mems = append(s.mems, p)
					s.regs[op.R] = amxSimVal{len(s.mems) - 1, 0}
					return nil
				}
				s.regs[op.R] = amxSimVal{-1, int(int64(uint64(mem[off/4]) | uint64(mem[off/4+1])<<32))}
			case "mov":
				v, err := reg(op.S)
				s.regs[op.R] = v
				return err
			case "shl":
				v, err := intReg(op.R)
				s.regs[op.R] = amxSimVal{-1, v << op.Imm}
				return err
			case "add", "addi":
				d, dst := amxSimVal{-1, op.Imm}, op.R
				if op.Kind == "add" {
					var err error
					if d, err = reg(op.S); err != nil {
						return err
					}
				}
				v, err := reg(dst)
				if err != nil {
					return err
				}
				if v.mem >= 0 && d.mem >= 0 {
					return fmt.Errorf("adding two pointers")
				}
				s.regs[dst] = amxSimVal{max(v.mem, d.mem), v.v + d.v}
			case "label":
			case "jz":
				v, err := reg(op.R)
				if err != nil {
					return err
				}
				if v.mem < 0 && v.v == 0 {
					pc, err = jump(op.Label)
				}
				return err
			case "looparg": // the count in the argument's slot
				i := op.Imm / 8
				if op.Imm%8 != 0 || i >= len(names) || names[i] != op.Arg || args[i].mem != nil {
					return fmt.Errorf("argument %s at frame offset %d is not an integer of %q", op.Arg, op.Imm, names)
				}
				args[i].n--
				if args[i].n != 0 {
					var err error
					pc, err = jump(op.Label)
					return err
				}
			case "loop":
				v, err := intReg(op.R)
				if err != nil {
					return err
				}
				s.regs[op.R] = amxSimVal{-1, v - 1}
				if v-1 != 0 {
					pc, err = jump(op.Label)
				}
				return err
			case "ldtilecfg":
				return s.ldtilecfg(cfg)
			case "tilerelease":
				s.configured = false
				s.tiles = [8]amxTile{}
			case "ret":
				if s.configured {
					return fmt.Errorf("RET with the tiles still configured (no TILERELEASE)")
				}
				pc = len(prog)
			default:
				return s.tileOp(op, reg)
			}
			return nil
		}()
		if err != nil {
			return fmt.Errorf("operation %d (%+v): %v", pc, op, err)
		}
	}
	return nil
}

// ldtilecfg checks and loads a palette-1 configuration as LDTILECFG does (#GP otherwise, Intel
// SDM): palette 1, reserved bytes zero, eight tiles of at most 16 rows × 64 bytes, a tile either
// wholly configured or wholly not, tiles 8–15 absent; stricter than the hardware, start_row 0 (no
// interrupted load to resume) and rows of whole 32-bit elements. The tiles' data is zeroed.
func (s *amxSim) ldtilecfg(cfg [64]byte) error {
	if cfg[0] != 1 {
		return fmt.Errorf("palette %d, want 1", cfg[0])
	}
	if cfg[1] != 0 {
		return fmt.Errorf("start_row %d", cfg[1])
	}
	for i := 2; i < 16; i++ {
		if cfg[i] != 0 {
			return fmt.Errorf("reserved byte %d is %#x", i, cfg[i])
		}
	}
	for t := 0; t < 16; t++ {
		colsb, rows := int(binary.LittleEndian.Uint16(cfg[16+2*t:])), int(cfg[48+t])
		if t >= 8 {
			if colsb != 0 || rows != 0 {
				return fmt.Errorf("tile %d configured, palette 1 has 8", t)
			}
			continue
		}
		if colsb > 64 || rows > 16 || (colsb == 0) != (rows == 0) || colsb%4 != 0 {
			return fmt.Errorf("tile %d: %d rows × %d bytes", t, rows, colsb)
		}
		s.tiles[t] = amxTile{rows: rows, colsb: colsb}
	}
	s.configured = true
	return nil
}

// tileOp runs TILELOADD, TILESTORED and TDPBF16PS.
func (s *amxSim) tileOp(op amxOp, reg func(string) (amxSimVal, error)) error {
	if !s.configured {
		return fmt.Errorf("tile instruction without a tile configuration")
	}
	for _, t := range op.T {
		if t < 0 || t >= 8 {
			return fmt.Errorf("tile %d", t)
		}
	}
	t := &s.tiles[op.T[0]]
	if t.rows == 0 {
		return fmt.Errorf("tile %d is not configured", op.T[0])
	}
	switch op.Kind {
	case "tileload", "tilestore":
		base, err := reg(op.R)
		if err != nil {
			return err
		}
		stride, err := reg(op.S)
		if err != nil {
			return err
		}
		if base.mem < 0 || stride.mem >= 0 {
			return fmt.Errorf("address %s (stride %s) is not a pointer plus an integer", op.R, op.S)
		}
		mem := s.mems[base.mem]
		if op.Kind == "tileload" {
			t.d = [16][16]uint32{} // rows and bytes past the shape read as zero
		}
		for r := 0; r < t.rows; r++ {
			off := base.v + op.Imm + r*stride.v
			if off%4 != 0 || off < 0 || off+t.colsb > 4*len(mem) {
				return fmt.Errorf("row %d: bytes [%d, %d) outside the %d-byte slice", r, off, off+t.colsb, 4*len(mem))
			}
			row := mem[off/4 : off/4+t.colsb/4]
			if op.Kind == "tileload" {
				copy(t.d[r][:], row)
			} else {
				copy(row, t.d[r][:])
			}
		}
	case "tdpbf16ps":
		a, b := &s.tiles[op.T[1]], &s.tiles[op.T[2]]
		switch {
		case op.T[0] == op.T[1] || op.T[0] == op.T[2] || op.T[1] == op.T[2]:
			return fmt.Errorf("TDPBF16PS with repeated tiles")
		case a.rows == 0 || b.rows == 0:
			return fmt.Errorf("TDPBF16PS on an unconfigured tile")
		case a.colsb/4 != b.rows || t.rows != a.rows || t.colsb != b.colsb:
			return fmt.Errorf("TDPBF16PS shapes: C %d×%dB, A %d×%dB, B %d×%dB", t.rows, t.colsb, a.rows, a.colsb, b.rows, b.colsb)
		}
		var bcol [16]uint32
		for m := 0; m < t.rows; m++ {
			for n := 0; n < t.colsb/4; n++ {
				for k := 0; k < b.rows; k++ {
					bcol[k] = b.d[k][n]
				}
				c := math.Float32frombits(t.d[m][n])
				t.d[m][n] = math.Float32bits(amxDot(c, a.d[m][:a.colsb/4], bcol[:b.rows]))
			}
		}
	default:
		return fmt.Errorf("unknown operation")
	}
	return nil
}

// amxKernelSim is an amxKernelFunc running the generated program in the simulator, each
// pointer of a call bounded by the extent its call allows (as amxBatch.add checked it); a fault
// panics with the simulator's error.
func amxKernelSim(calls []amxCall) {
	if err := amxSimulateCalls(amxKernelProgram(), amxTileConfig(), calls); err != nil {
		panic(fmt.Sprintf("AMX simulator: %v", err))
	}
}

// amxSimulateCalls runs prog with configuration cfg on calls (see amxKernelSim).
func amxSimulateCalls(prog []amxOp, cfg [64]byte, calls []amxCall) error {
	if len(calls) == 0 {
		return amxSimulate(prog, cfg, amxKernelArgs(), []amxSimArg{{mem: []uint32{0}}, {n: 0}}, 1<<10)
	}
	size := int(unsafe.Sizeof(amxCall{}))
	desc := unsafe.Slice((*uint32)(unsafe.Pointer(&calls[0])), len(calls)*size/4)
	ptrs := map[int][]uint32{}
	for i, c := range calls {
		at := func(field uintptr, p unsafe.Pointer, words int) {
			ptrs[i*size+int(field)] = unsafe.Slice((*uint32)(p), words)
		}
		b := c.bmax/4 + (amxKT-1)*c.bs/4 + sgemmNR
		at(unsafe.Offsetof(c.a), c.a, (amxMR-1)*c.lda+amxKT*c.kt)
		at(unsafe.Offsetof(c.b0), c.b0, b)
		at(unsafe.Offsetof(c.b1), c.b1, b)
		at(unsafe.Offsetof(c.boff), c.boff, 2*c.kt)
		at(unsafe.Offsetof(c.c0), c.c0, (amxMR-1)*c.ldc+sgemmNR)
		at(unsafe.Offsetof(c.c1), c.c1, (amxMR-1)*c.ldc+sgemmNR)
		at(unsafe.Offsetof(c.i0), c.i0, (amxMR-1)*c.ldi+sgemmNR)
		at(unsafe.Offsetof(c.i1), c.i1, (amxMR-1)*c.ldi+sgemmNR)
	}
	args := []amxSimArg{{mem: desc, ptrs: ptrs}, {n: len(calls)}}
	return amxSimulate(prog, cfg, amxKernelArgs(), args, 1<<30)
}
