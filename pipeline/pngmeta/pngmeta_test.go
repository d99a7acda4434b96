package pngmeta

import (
	"bytes"
	"compress/zlib"
	"encoding/hex"
	"image"
	"image/color"
	"image/png"
	"reflect"
	"strings"
	"testing"
)

func testImage() *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, 5, 3))
	for y := 0; y < 3; y++ {
		for x := 0; x < 5; x++ {
			img.SetNRGBA(x, y, color.NRGBA{uint8(40 * x), uint8(70 * y), 9, 255})
		}
	}
	return img
}

// The CRC of an IEND chunk is fixed by the PNG specification: AE 42 60 82.
func TestWriteChunkIEND(t *testing.T) {
	var b bytes.Buffer
	writeChunk(&b, "IEND", nil)
	if got := hex.EncodeToString(b.Bytes()); got != "0000000049454e44ae426082" {
		t.Fatalf("IEND chunk = %s, want 0000000049454e44ae426082", got)
	}
}

func TestRoundTrip(t *testing.T) {
	texts := []Text{
		{"parameters", "a cat, 4k\nSteps: 25, Sampler: PNDM"},
		{"Comment", "café"},       // Latin-1: tEXt
		{"Title", "猫 on a mat 🐱"}, // not Latin-1: iTXt
	}
	var buf bytes.Buffer
	if err := EncodeWithText(&buf, testImage(), texts...); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	if !bytes.Contains(data, []byte("tEXtComment\x00caf\xe9")) {
		t.Error("Latin-1 text was not written as a Latin-1 tEXt chunk")
	}
	if !bytes.Contains(data, []byte("iTXtTitle\x00\x00\x00\x00\x00猫")) {
		t.Error("non-Latin-1 text was not written as an uncompressed iTXt chunk")
	}
	if i, j := bytes.Index(data, []byte("tEXtparameters")), bytes.Index(data, []byte("IDAT")); i < 0 || i > j {
		t.Errorf("parameters chunk at %d, IDAT at %d: want the text before the image data", i, j)
	}
	got, err := ReadText(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, texts) {
		t.Errorf("ReadText = %q, want %q", got, texts)
	}
	// The image itself is untouched and image/png (which checks every CRC) still reads it.
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	want := testImage()
	for y := 0; y < 3; y++ {
		for x := 0; x < 5; x++ {
			if got := color.NRGBAModel.Convert(img.At(x, y)); got != want.At(x, y) {
				t.Fatalf("pixel (%d,%d) = %v, want %v", x, y, got, want.At(x, y))
			}
		}
	}
}

func TestReadCompressedText(t *testing.T) {
	var plain bytes.Buffer
	if err := png.Encode(&plain, testImage()); err != nil {
		t.Fatal(err)
	}
	deflate := func(s string) []byte {
		var b bytes.Buffer
		zw := zlib.NewWriter(&b)
		zw.Write([]byte(s))
		zw.Close()
		return b.Bytes()
	}
	var chunks bytes.Buffer
	writeChunk(&chunks, "zTXt", append([]byte("Description\x00\x00"), deflate("r\xe9sum\xe9")...))
	writeChunk(&chunks, "iTXt", append([]byte("parameters\x00\x01\x00en\x00Parameter\x00"), deflate("dog 🐶")...))
	data := plain.Bytes()
	idat := bytes.Index(data, []byte("IDAT")) - 4
	file := append(append(append([]byte{}, data[:idat]...), chunks.Bytes()...), data[idat:]...)
	got, err := ReadText(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	want := []Text{{"Description", "résumé"}, {"parameters", "dog 🐶"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadText = %q, want %q", got, want)
	}
}

func TestReadTextErrors(t *testing.T) {
	var buf bytes.Buffer
	if err := EncodeWithText(&buf, testImage(), Text{"parameters", "x"}); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	corrupt := append([]byte{}, good...)
	i := bytes.Index(corrupt, []byte("tEXtparameters"))
	corrupt[i+len("tEXtparameters")+1] ^= 1 // flip a bit of the text: CRC no longer matches
	cases := map[string][]byte{
		"signature": append([]byte("GIF89a.."), good[8:]...),
		"CRC":       corrupt,
		"truncated": good[:len(good)-20],
		"empty":     nil,
	}
	for name, data := range cases {
		if _, err := ReadText(bytes.NewReader(data)); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	if _, err := ReadParameters(bytes.NewReader(good[:0])); err == nil {
		t.Error("ReadParameters on nothing: no error")
	}
	var plain bytes.Buffer
	png.Encode(&plain, testImage())
	if _, err := ReadParameters(&plain); err == nil || !strings.Contains(err.Error(), `"parameters"`) {
		t.Errorf("ReadParameters without the chunk: %v, want an error naming it", err)
	}
}

func TestInsertTextErrors(t *testing.T) {
	var plain bytes.Buffer
	png.Encode(&plain, testImage())
	for _, k := range []string{"", " lead", "trail ", "two  spaces", strings.Repeat("k", 80), "tab\tkey", "naïve"} {
		if _, err := InsertText(plain.Bytes(), Text{k, "v"}); err == nil {
			t.Errorf("keyword %q accepted", k)
		}
	}
	if _, err := InsertText(plain.Bytes(), Text{"k", "\xff\xfe"}); err == nil {
		t.Error("invalid UTF-8 text accepted")
	}
	if _, err := InsertText([]byte("not a png"), Text{"k", "v"}); err == nil {
		t.Error("non-PNG data accepted")
	}
	if _, err := InsertText(plain.Bytes()[:40], Text{"k", "v"}); err == nil {
		t.Error("truncated PNG accepted")
	}
}

// The web UI's own infotext for a txt2img image (format of modules/processing.py create_infotext).
const webUIText = `masterpiece, a photograph of an astronaut riding a horse
on the moon
Negative prompt: blurry, low quality
Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 3071553364, Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Lora hashes: "x: 1234, y: 5678", Version: v1.6.0`

func TestParseWebUIText(t *testing.T) {
	p, err := ParseParameters(webUIText)
	if err != nil {
		t.Fatal(err)
	}
	want := Parameters{
		Prompt:         "masterpiece, a photograph of an astronaut riding a horse\non the moon",
		NegativePrompt: "blurry, low quality",
		Steps:          20, Sampler: "DPM++ 2M Karras", CFGScale: 7, Seed: 3071553364,
		Width: 512, Height: 768, Model: "v1-5-pruned-emaonly",
		Extra: []Field{{"Model hash", "6ce0161689"}, {"Lora hashes", "x: 1234, y: 5678"}, {"Version", "v1.6.0"}},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("ParseParameters =\n%#v\nwant\n%#v", p, want)
	}
}

func TestParametersString(t *testing.T) {
	p := Parameters{Prompt: "a apple, 4k", Steps: 25, Sampler: "PNDM", CFGScale: 7.5, Seed: 42,
		Width: 512, Height: 512, Model: "small-stable-diffusion-v0"}
	want := "a apple, 4k\nSteps: 25, Sampler: PNDM, CFG scale: 7.5, Seed: 42, Size: 512x512, Model: small-stable-diffusion-v0"
	if got := p.String(); got != want {
		t.Errorf("String =\n%s\nwant\n%s", got, want)
	}
	p.NegativePrompt, p.CFGScale, p.Model = "ugly", 7, `odd: "name", 2`
	p.Extra = []Field{{"Batch size", "2"}, {"Batch pos", "1"}}
	want = "a apple, 4k\nNegative prompt: ugly\nSteps: 25, Sampler: PNDM, CFG scale: 7.0, Seed: 42, Size: 512x512, " +
		`Model: "odd: \"name\", 2", Batch size: 2, Batch pos: 1`
	if got := p.String(); got != want {
		t.Errorf("String =\n%s\nwant\n%s", got, want)
	}
	back, err := ParseParameters(p.String())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, p) {
		t.Errorf("round trip:\n%#v\nwant\n%#v", back, p)
	}
}

func TestParseParametersErrors(t *testing.T) {
	for _, s := range []string{
		"p\nSteps: many, Sampler: PNDM, CFG scale: 7.5",
		"p\nSteps: 2, Sampler: PNDM, Size: 512",
		"p\nSteps: 2, Sampler: PNDM, Seed: 1.5",
	} {
		if _, err := ParseParameters(s); err == nil {
			t.Errorf("%q: no error", s)
		} else {
			t.Logf("%v", err)
		}
	}
	// Fewer than three settings: the last line is part of the prompt, as in the web UI.
	p, err := ParseParameters("a dog\nSteps: 3")
	if err != nil || p.Prompt != "a dog\nSteps: 3" || p.Steps != 0 {
		t.Errorf("got %#v, %v", p, err)
	}
}

func FuzzReadText(f *testing.F) {
	var buf bytes.Buffer
	EncodeWithText(&buf, testImage(), Text{"parameters", "x, y\nSteps: 1, Sampler: DDIM, Seed: 2"}, Text{"T", "é🐱"})
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		texts, err := ReadText(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, tx := range texts {
			ParseParameters(tx.Value)
		}
	})
}

func FuzzParseParameters(f *testing.F) {
	f.Add(webUIText)
	f.Add("a\nNegative prompt: b\nSteps: 1, Sampler: \"x, y\", Seed: 3")
	f.Fuzz(func(t *testing.T, s string) {
		ParseParameters(s)
	})
}
