package server

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Any body gives a checked request or a 413/422 error naming the field; nothing panics.
func FuzzTxt2imgRequest(f *testing.F) {
	for _, s := range []string{`{}`, `{"prompt": "a", "steps": 4, "sampler_name": "Euler a", "scheduler": "Karras"}`,
		`{"width": 100}`, `{"steps": "x"}`, `{"batch_size": 2, "n_iter": 3, "seed": -1}`, `[`, `null`, `{"styles": ["a"]}`,
		`{"cfg_scale": 1e400}`, `{"seed": 18446744073709551615}`, `{"sampler_index": "k_lms"}`} {
		f.Add(s)
	}
	s := New(tinyPipeline(f), WithMaxBodyBytes(1<<12))
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "/sdapi/v1/txt2img", strings.NewReader(body))
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, s.maxBody)
		gp, err := s.decodeTxt2img(r)
		var fe *fieldError
		var mbe *http.MaxBytesError
		switch {
		case err == nil:
			q := gp.req
			if q.Steps < 1 || q.Width < 8 || q.Height < 8 || q.NumImages < 1 || gp.iters < 1 || q.Seed < 0 || q.Scheduler == "" {
				t.Fatalf("accepted %q as %+v", body, q)
			}
		case errors.As(err, &fe):
			if fe.Field == "" || fe.Msg == "" {
				t.Fatalf("%q: field error %+v names no field", body, fe)
			}
		case errors.As(err, &mbe):
		default:
			t.Fatalf("%q: error %v is neither a field error nor too large", body, err)
		}
	})
}
