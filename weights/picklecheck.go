package weights

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// checkPickle walks the opcodes of the pickle at the start of b up to its STOP without running
// them, and checks that every length-prefixed argument fits in b. gopickle allocates a buffer
// of whatever length the file claims before reading it, so a corrupt length could otherwise
// ask for terabytes.
func checkPickle(b []byte) error {
	pos := 0
	need := func(n uint64) error {
		if n > uint64(len(b)-pos) {
			return fmt.Errorf("pickle truncated or corrupt at byte %d (argument of %d bytes, %d left)", pos, n, len(b)-pos)
		}
		return nil
	}
	for pos < len(b) {
		op := b[pos]
		pos++
		var n uint64 // bytes of argument to skip
		switch op {
		case '.': // STOP
			return nil
		case '(', '0', '1', '2', 'N', 'a', 'b', 'd', '}', 'e', 'l', ']', 'o', 'R', 's', 't', ')', 'u', 'Q',
			0x88, 0x89, 0x85, 0x86, 0x87, 0x81, 0x92, 0x8f, 0x90, 0x91, 0x93, 0x94, 0x97, 0x98:
		case 'K', 'h', 'q', 0x80, 0x82:
			n = 1
		case 'M', 0x83:
			n = 2
		case 'J', 'j', 'r', 0x84:
			n = 4
		case 'G':
			n = 8
		case 0x95: // FRAME: the framed opcodes follow inline, so only the length is checked
			if err := need(8); err != nil {
				return err
			}
			if err := need(8 + binary.LittleEndian.Uint64(b[pos:])); err != nil {
				return err
			}
			n = 8
		case 'I', 'L', 'F', 'S', 'V', 'P', 'g', 'p', 'c', 'i':
			lines := 1
			if op == 'c' || op == 'i' {
				lines = 2
			}
			for ; lines > 0; lines-- {
				j := bytes.IndexByte(b[pos:], '\n')
				if j < 0 {
					return fmt.Errorf("pickle truncated at byte %d (unterminated line)", pos)
				}
				pos += j + 1
			}
		case 'U', 0x8c, 'C', 0x8a:
			if err := need(1); err != nil {
				return err
			}
			n = 1 + uint64(b[pos])
		case 'T', 'X', 'B', 0x8b:
			if err := need(4); err != nil {
				return err
			}
			n = 4 + uint64(binary.LittleEndian.Uint32(b[pos:]))
		case 0x8d, 0x8e, 0x96:
			if err := need(8); err != nil {
				return err
			}
			l := binary.LittleEndian.Uint64(b[pos:])
			if l > uint64(len(b)) {
				return fmt.Errorf("pickle corrupt at byte %d (argument of %d bytes)", pos, l)
			}
			n = 8 + l
		default:
			return fmt.Errorf("not a pickle: unknown opcode %#x at byte %d", op, pos-1)
		}
		if err := need(n); err != nil {
			return err
		}
		pos += int(n)
	}
	return fmt.Errorf("pickle truncated: no STOP opcode")
}
