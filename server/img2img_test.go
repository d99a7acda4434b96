package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/pipeline"
	"github.com/smallsd/smallsd/pipeline/pngmeta"
)

// testImage is a w×h gradient.
func testImage(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{uint8(255 * x / w), uint8(255 * y / h), 128, 255})
		}
	}
	return img
}

func pngBase64(t testing.TB, img image.Image) string {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// img2img and inpainting through POST /sdapi/v1/img2img give pipeline.Generate's pixels.
func TestImg2imgMatchesPipeline(t *testing.T) {
	_, ts := newTestServer(t)
	p := tinyPipeline(t)
	init := testImage(64, 64)
	mask := image.NewGray(init.Bounds())
	for y := 16; y < 48; y++ {
		for x := 16; x < 48; x++ {
			mask.SetGray(x, y, color.Gray{255})
		}
	}
	for _, inpaint := range []bool{false, true} {
		body := map[string]any{"prompt": "a (red:1.2) apple", "steps": 4, "seed": 7, "sampler_name": "DDIM",
			"denoising_strength": 0.6, "init_images": []string{"data:image/png;base64," + pngBase64(t, init)},
			"mask_blur": 4, "inpainting_fill": 1, "inpaint_full_res": true}
		want := pipeline.Request{Prompt: "a (red:1.2) apple", Steps: 4, Seed: 7, Scheduler: "ddim", Strength: 0.6, Init: init,
			PromptSyntax: pipeline.PromptSyntaxA1111}
		if inpaint {
			body["mask"] = pngBase64(t, mask)
			want.Mask, want.PasteOriginal = mask, true
		}
		b, _ := json.Marshal(body)
		code, _, resp := post(t, context.Background(), ts.URL+"/sdapi/v1/img2img", string(b))
		if code != 200 {
			t.Fatalf("inpaint %v: status %d: %s", inpaint, code, resp)
		}
		r, info := decodeTxt2img(t, resp)
		img, chunk := decodePNG(t, r.Images[0])
		res, err := p.Generate(context.Background(), want)
		if err != nil {
			t.Fatal(err)
		}
		diff := 0
		for i := range img.Pix {
			if img.Pix[i] != res.Images[0].Pix[i] {
				diff++
			}
		}
		t.Logf("inpaint %v: %d of %d bytes differ from pipeline.Generate's image", inpaint, diff, len(img.Pix))
		if diff != 0 {
			t.Errorf("inpaint %v: the image differs from pipeline.Generate's", inpaint)
		}
		pp, err := pngmeta.ParseParameters(chunk)
		if err != nil || len(pp.Extra) != 1 || pp.Extra[0] != (pngmeta.Field{Key: "Denoising strength", Value: "0.6"}) ||
			info.DenoisingStrength != 0.6 || chunk != info.Infotexts[0] {
			t.Errorf("parameters %q (%v), info strength %v", chunk, err, info.DenoisingStrength)
		}
	}
}

// An init image of another size is resized; width and height default to its size.
func TestImg2imgSizes(t *testing.T) {
	_, ts := newTestServer(t)
	init := "data:image/png;base64," + pngBase64(t, testImage(70, 45))
	for _, c := range []struct {
		extra string
		w, h  int
	}{{``, 64, 40}, {`, "width": 64, "height": 64`, 64, 64}, {`, "width": 48`, 48, 40}} {
		code, _, b := post(t, context.Background(), ts.URL+"/sdapi/v1/img2img",
			`{"steps": 2, "denoising_strength": 0.5, "init_images": ["`+init+`"]`+c.extra+`}`)
		if code != 200 {
			t.Fatalf("%s: %d %s", c.extra, code, b)
		}
		r, _ := decodeTxt2img(t, b)
		img, _ := decodePNG(t, r.Images[0])
		if img.Bounds().Dx() != c.w || img.Bounds().Dy() != c.h {
			t.Errorf("%s: image %v, want %dx%d", c.extra, img.Bounds(), c.w, c.h)
		}
	}
}

func TestImg2imgErrors(t *testing.T) {
	_, ts := newTestServer(t)
	good := pngBase64(t, testImage(64, 64))
	for _, c := range []struct{ body, field string }{
		{`{}`, "init_images"},
		{`{"init_images": ["` + good + `", "` + good + `"]}`, "init_images"},
		{`{"init_images": ["not base64!"]}`, "init_images"},
		{`{"init_images": ["aGVsbG8="]}`, "init_images"},
		{`{"init_images": ["` + good + `"], "denoising_strength": 0}`, "denoising_strength"},
		{`{"init_images": ["` + good + `"], "denoising_strength": 1.5}`, "denoising_strength"},
		{`{"init_images": ["` + good + `"], "width": 128, "resize_mode": 2}`, "resize_mode"},
		{`{"init_images": ["` + good + `"], "mask": "????"}`, "mask"},
		{`{"init_images": ["` + good + `"], "mask": "` + pngBase64(t, testImage(8, 8)) + `", "resize_mode": 1}`, "resize_mode"},
		{`{"init_images": ["` + good + `"], "steps": 0}`, "steps"},
		{`{"init_images": ["` + good + `"], "width": 100}`, "width"},
	} {
		code, _, b := post(t, context.Background(), ts.URL+"/sdapi/v1/img2img", c.body)
		var e struct{ Field string }
		json.Unmarshal(b, &e)
		if code != 422 || e.Field != c.field {
			t.Errorf("%.60s: %d %s, want 422 naming %s", strings.ReplaceAll(c.body, good, "…"), code, b, c.field)
		}
	}
}

// A request larger than the pipeline's memory budget gets 422 naming the size.
func TestOverBudget(t *testing.T) {
	p, err := pipeline.Load(golden.Path("tiny-sd"), pipeline.WithMemoryBudget(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s := New(p, WithLogger(testLogger(t)))
	defer s.Close()
	for _, c := range []struct{ body, field string }{
		{`{"steps": 1, "width": 512, "height": 512}`, "width"},
		{`{"steps": 1, "width": 256, "height": 256, "batch_size": 4}`, "batch_size"},
	} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("POST", "/sdapi/v1/txt2img", strings.NewReader(c.body)))
		var e struct{ Error, Field string }
		json.Unmarshal(rec.Body.Bytes(), &e)
		t.Logf("%s: %d %s", c.body, rec.Code, e.Error)
		if rec.Code != 422 || e.Field != c.field || !strings.Contains(e.Error, "memory budget") {
			t.Errorf("%s: %d %s, want 422 naming %s", c.body, rec.Code, rec.Body, c.field)
		}
	}
}
