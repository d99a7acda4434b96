// Package pngmeta reads and writes PNG text chunks, and the "parameters" text in which
// AUTOMATIC1111's Stable Diffusion web UI (and tools that read it: ComfyUI, InvokeAI, civitai,
// exiftool, PIL's Image.info) keep the prompt and settings an image was made with.
//
// Writing is done after image/png has encoded the picture: EncodeWithText (or InsertText on
// bytes already encoded) adds the text chunks in front of the first IDAT chunk with their CRC-32,
// as PIL does. Text that Latin-1 can hold goes into a tEXt chunk; other text (a prompt with
// emoji or CJK characters) into an uncompressed UTF-8 iTXt chunk, which is what PIL's
// PngInfo.add_text, and so the web UI, does. ReadText returns the text of tEXt, zTXt and iTXt
// chunks.
package pngmeta

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"unicode/utf8"
)

// Signature is the 8-byte header every PNG file starts with.
const Signature = "\x89PNG\r\n\x1a\n"

// maxText bounds the size of one text chunk's contents (compressed or not) that ReadText
// accepts, so a corrupt or hostile file cannot make it allocate without limit.
const maxText = 16 << 20

// Text is one textual chunk: a keyword (1–79 Latin-1 characters, no leading, trailing or
// double spaces) and its text.
type Text struct {
	Keyword string
	Value   string
}

// EncodeWithText encodes img as PNG (image/png's default compression) with the given text chunks
// and writes it to w.
func EncodeWithText(w io.Writer, img image.Image, texts ...Text) error {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return fmt.Errorf("pngmeta: encoding PNG: %w", err)
	}
	out, err := InsertText(buf.Bytes(), texts...)
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}

// InsertText returns a copy of the PNG file data with the text chunks added just before the
// first IDAT chunk. It checks the chunk structure (not the CRCs) of data and the keywords.
func InsertText(data []byte, texts ...Text) ([]byte, error) {
	if !bytes.HasPrefix(data, []byte(Signature)) {
		return nil, errors.New("pngmeta: not a PNG file (bad signature)")
	}
	var chunks bytes.Buffer
	for _, t := range texts {
		typ, body, err := textChunk(t)
		if err != nil {
			return nil, err
		}
		writeChunk(&chunks, typ, body)
	}
	// Find the first IDAT: text chunks must come after IHDR and may not come after IEND; PIL puts
	// them before the image data, where readers that stop at IDAT still see them.
	off := len(Signature)
	for {
		if off+8 > len(data) {
			return nil, errors.New("pngmeta: no IDAT chunk found (truncated PNG?)")
		}
		n := binary.BigEndian.Uint32(data[off:])
		typ := string(data[off+4 : off+8])
		if typ == "IDAT" {
			break
		}
		if typ == "IEND" {
			return nil, errors.New("pngmeta: IEND before any IDAT chunk")
		}
		end := uint64(off) + 12 + uint64(n)
		if end > uint64(len(data)) {
			return nil, fmt.Errorf("pngmeta: chunk %q at offset %d runs past the end of the data", typ, off)
		}
		off = int(end)
	}
	out := make([]byte, 0, len(data)+chunks.Len())
	out = append(out, data[:off]...)
	out = append(out, chunks.Bytes()...)
	return append(out, data[off:]...), nil
}

// textChunk makes the chunk type and body for t: tEXt when the value is Latin-1, else iTXt.
func textChunk(t Text) (string, []byte, error) {
	if err := checkKeyword(t.Keyword); err != nil {
		return "", nil, err
	}
	if !utf8.ValidString(t.Value) {
		return "", nil, fmt.Errorf("pngmeta: text of %q is not valid UTF-8", t.Keyword)
	}
	if latin1, ok := toLatin1(t.Value); ok {
		body := append([]byte(t.Keyword), 0)
		return "tEXt", append(body, latin1...), nil
	}
	// keyword, NUL, compression flag 0, method 0, empty language tag, NUL, empty translated
	// keyword, NUL, UTF-8 text.
	body := append([]byte(t.Keyword), 0, 0, 0, 0, 0)
	return "iTXt", append(body, t.Value...), nil
}

// checkKeyword applies the PNG specification's keyword rules.
func checkKeyword(k string) error {
	if len(k) < 1 || len(k) > 79 {
		return fmt.Errorf("pngmeta: keyword %q must be 1 to 79 characters long", k)
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c < 32 || c > 126 {
			return fmt.Errorf("pngmeta: keyword %q has a character other than printable ASCII", k)
		}
	}
	if k[0] == ' ' || k[len(k)-1] == ' ' || bytes.Contains([]byte(k), []byte("  ")) {
		return fmt.Errorf("pngmeta: keyword %q has leading, trailing or consecutive spaces", k)
	}
	return nil
}

func toLatin1(s string) ([]byte, bool) {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return nil, false
		}
		b = append(b, byte(r))
	}
	return b, true
}

func fromLatin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

func writeChunk(w *bytes.Buffer, typ string, body []byte) {
	var hdr [8]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(len(body)))
	copy(hdr[4:], typ)
	w.Write(hdr[:])
	w.Write(body)
	crc := crc32.NewIEEE()
	crc.Write(hdr[4:])
	crc.Write(body)
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc.Sum32())
	w.Write(sum[:])
}

// ReadText reads a PNG file from r up to its IEND chunk and returns its tEXt, zTXt and iTXt
// chunks in file order. Every chunk's CRC is checked; a mismatch, a truncated file or a
// malformed text chunk is an error.
func ReadText(r io.Reader) ([]Text, error) {
	var sig [8]byte
	if _, err := io.ReadFull(r, sig[:]); err != nil || string(sig[:]) != Signature {
		return nil, errors.New("pngmeta: not a PNG file (bad signature)")
	}
	var texts []Text
	for off := int64(8); ; {
		var hdr [8]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, fmt.Errorf("pngmeta: truncated PNG at offset %d (no IEND chunk)", off)
		}
		n := int64(binary.BigEndian.Uint32(hdr[:4]))
		typ := string(hdr[4:])
		if n > 1<<31-1 {
			return nil, fmt.Errorf("pngmeta: chunk %q at offset %d has an invalid length %d", typ, off, n)
		}
		isText := typ == "tEXt" || typ == "zTXt" || typ == "iTXt"
		if isText && n > maxText {
			return nil, fmt.Errorf("pngmeta: %s chunk at offset %d is %d bytes, more than the %d accepted", typ, off, n, maxText)
		}
		crc := crc32.NewIEEE()
		crc.Write(hdr[4:])
		var body bytes.Buffer
		dst := io.Writer(crc)
		if isText {
			dst = io.MultiWriter(crc, &body)
		}
		if _, err := io.CopyN(dst, r, n); err != nil {
			return nil, fmt.Errorf("pngmeta: truncated %q chunk at offset %d", typ, off)
		}
		var sum [4]byte
		if _, err := io.ReadFull(r, sum[:]); err != nil {
			return nil, fmt.Errorf("pngmeta: truncated %q chunk at offset %d", typ, off)
		}
		if binary.BigEndian.Uint32(sum[:]) != crc.Sum32() {
			return nil, fmt.Errorf("pngmeta: CRC mismatch in %q chunk at offset %d", typ, off)
		}
		if isText {
			t, err := parseText(typ, body.Bytes())
			if err != nil {
				return nil, fmt.Errorf("pngmeta: %s chunk at offset %d: %w", typ, off, err)
			}
			texts = append(texts, t)
		}
		if typ == "IEND" {
			return texts, nil
		}
		off += 12 + n
	}
}

// parseText decodes the body of a tEXt, zTXt or iTXt chunk.
func parseText(typ string, b []byte) (Text, error) {
	k, rest, ok := bytes.Cut(b, []byte{0})
	if !ok {
		return Text{}, errors.New("no NUL after the keyword")
	}
	if len(k) < 1 || len(k) > 79 {
		return Text{}, fmt.Errorf("keyword of %d bytes (want 1 to 79)", len(k))
	}
	key := fromLatin1(k)
	switch typ {
	case "tEXt":
		return Text{key, fromLatin1(rest)}, nil
	case "zTXt":
		if len(rest) < 1 || rest[0] != 0 {
			return Text{}, errors.New("unknown compression method")
		}
		v, err := inflate(rest[1:])
		if err != nil {
			return Text{}, err
		}
		return Text{key, fromLatin1(v)}, nil
	default: // iTXt
		if len(rest) < 2 {
			return Text{}, errors.New("missing compression flag and method")
		}
		compressed, method := rest[0], rest[1]
		_, rest, ok1 := bytes.Cut(rest[2:], []byte{0}) // language tag
		_, rest, ok2 := bytes.Cut(rest, []byte{0})     // translated keyword
		if !ok1 || !ok2 {
			return Text{}, errors.New("missing NUL after the language tag or translated keyword")
		}
		v := rest
		switch {
		case compressed == 1 && method == 0:
			var err error
			if v, err = inflate(rest); err != nil {
				return Text{}, err
			}
		case compressed != 0:
			return Text{}, errors.New("unknown compression flag or method")
		}
		if !utf8.Valid(v) {
			return Text{}, errors.New("text is not valid UTF-8")
		}
		return Text{key, string(v)}, nil
	}
}

func inflate(b []byte) ([]byte, error) {
	zr, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("compressed text: %w", err)
	}
	defer zr.Close()
	v, err := io.ReadAll(io.LimitReader(zr, maxText+1))
	if err != nil {
		return nil, fmt.Errorf("compressed text: %w", err)
	}
	if len(v) > maxText {
		return nil, fmt.Errorf("compressed text expands to more than %d bytes", maxText)
	}
	return v, nil
}

// Lookup returns the value of the first text with the given keyword.
func Lookup(texts []Text, keyword string) (string, bool) {
	for _, t := range texts {
		if t.Keyword == keyword {
			return t.Value, true
		}
	}
	return "", false
}
