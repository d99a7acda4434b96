package pngmeta

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// ParametersKeyword is the text chunk keyword under which the web UI stores generation
// parameters.
const ParametersKeyword = "parameters"

// Field is one "Key: value" setting of a parameters line beyond the ones Parameters names.
type Field struct {
	Key   string
	Value string
}

// Parameters are the generation settings of an image in AUTOMATIC1111's "infotext" form:
//
//	a photograph of an astronaut riding a horse
//	Negative prompt: blurry, low quality
//	Steps: 25, Sampler: PNDM, CFG scale: 7.5, Seed: 42, Size: 512x512, Model: small-stable-diffusion-v0
//
// The prompt comes first (it may span lines), then the negative prompt line when there is one,
// then one line of comma-separated settings. A value holding a comma, colon or line break is
// written as a JSON string, as the web UI's quote() does.
type Parameters struct {
	Prompt         string
	NegativePrompt string
	Steps          int
	Sampler        string // the web UI's sampler name, e.g. "PNDM", "DDIM", "Euler a", "DPM++ 2M Karras"
	CFGScale       float64
	Seed           int64
	Width, Height  int
	Model          string
	// Extra holds further settings in order, e.g. {"Batch size", "2"}; written after Model.
	Extra []Field
}

// String formats p as the web UI writes it (create_infotext): prompt, "Negative prompt: …" line
// when the negative prompt is not empty, then the settings line, the whole trimmed of surrounding
// white space. Settings with a zero value (no sampler, no model, zero size) are left out, except
// Steps, CFG scale and Seed.
func (p Parameters) String() string {
	fields := []Field{
		{"Steps", strconv.Itoa(p.Steps)},
		{"Sampler", p.Sampler},
		{"CFG scale", FormatFloat(p.CFGScale)},
		{"Seed", strconv.FormatInt(p.Seed, 10)},
	}
	if p.Width > 0 || p.Height > 0 {
		fields = append(fields, Field{"Size", fmt.Sprintf("%dx%d", p.Width, p.Height)})
	}
	fields = append(fields, Field{"Model", p.Model})
	fields = append(fields, p.Extra...)
	var line []string
	for _, f := range fields {
		if f.Value == "" {
			continue // the web UI drops settings whose value is None
		}
		line = append(line, f.Key+": "+quote(f.Value))
	}
	var b strings.Builder
	b.WriteString(p.Prompt)
	if p.NegativePrompt != "" {
		b.WriteString("\nNegative prompt: " + p.NegativePrompt)
	}
	b.WriteString("\n" + strings.Join(line, ", "))
	return strings.TrimSpace(b.String())
}

// FormatFloat formats v as Python's str(float) does for the values a CFG scale or denoising
// strength takes, as the web UI writes them: 7.5 → "7.5", 7 → "7.0".
func FormatFloat(v float64) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.ContainsAny(s, ".eEnN") {
		s += ".0"
	}
	return s
}

// quote is the web UI's quote(): values without ',', ':' or a line break stay as they are, others
// become JSON strings (non-ASCII characters kept, as with ensure_ascii=False).
func quote(v string) string {
	if !strings.ContainsAny(v, ",:\n") {
		return v
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // a string always encodes
	return strings.TrimSuffix(buf.String(), "\n")
}

// reParam is the web UI's re_param: a key of word characters and spaces, a colon, then a JSON
// string or anything up to the next comma.
var reParam = regexp.MustCompile(`\s*([\w ]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)`)

var reSize = regexp.MustCompile(`^(\d+)x(\d+)$`)

// ParseParameters reads text in the web UI's infotext form as its parse_generation_parameters
// does: the last line holds the settings when it has at least three "Key: value" pairs; the
// lines before it are the prompt, up to a line starting "Negative prompt:", which starts the
// negative prompt. Steps, Sampler, CFG scale, Seed, Size and Model fill the named fields (a value
// of the wrong form is an error naming the key); other settings go to Extra, in order.
func ParseParameters(text string) (Parameters, error) {
	var p Parameters
	lines := strings.Split(strings.TrimSpace(text), "\n")
	last := lines[len(lines)-1]
	lines = lines[:len(lines)-1]
	if len(reParam.FindAllStringSubmatch(last, -1)) < 3 {
		lines = append(lines, last)
		last = ""
	}
	var prompt, negative []string
	inNegative := false
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "Negative prompt:") {
			inNegative = true
			l = strings.TrimSpace(l[len("Negative prompt:"):])
		}
		if inNegative {
			negative = append(negative, l)
		} else {
			prompt = append(prompt, l)
		}
	}
	p.Prompt = strings.Join(prompt, "\n")
	p.NegativePrompt = strings.Join(negative, "\n")
	for _, m := range reParam.FindAllStringSubmatch(last, -1) {
		k, v := strings.TrimSpace(m[1]), strings.TrimSpace(m[2])
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			var s string
			if err := json.Unmarshal([]byte(v), &s); err != nil {
				return p, fmt.Errorf("pngmeta: parameters: value of %q is a malformed quoted string: %w", k, err)
			}
			v = s
		}
		var err error
		switch k {
		case "Steps":
			p.Steps, err = strconv.Atoi(v)
		case "Sampler":
			p.Sampler = v
		case "CFG scale":
			p.CFGScale, err = strconv.ParseFloat(v, 64)
		case "Seed":
			p.Seed, err = strconv.ParseInt(v, 10, 64)
		case "Size":
			sm := reSize.FindStringSubmatch(v)
			if sm == nil {
				err = errors.New("want WIDTHxHEIGHT")
				break
			}
			p.Width, _ = strconv.Atoi(sm[1])
			p.Height, _ = strconv.Atoi(sm[2])
		case "Model":
			p.Model = v
		default:
			p.Extra = append(p.Extra, Field{k, v})
		}
		if err != nil {
			return p, fmt.Errorf("pngmeta: parameters: bad %s value %q: %v", k, v, err)
		}
	}
	return p, nil
}

// ReadParameters reads a PNG file from r and parses its "parameters" text chunk. It is an error
// when the file has none.
func ReadParameters(r io.Reader) (Parameters, error) {
	texts, err := ReadText(r)
	if err != nil {
		return Parameters{}, err
	}
	v, ok := Lookup(texts, ParametersKeyword)
	if !ok {
		return Parameters{}, fmt.Errorf("pngmeta: no %q text chunk", ParametersKeyword)
	}
	return ParseParameters(v)
}
