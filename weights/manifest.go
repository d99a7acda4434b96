package weights

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ReadManifest reads a tensor manifest (testdata/manifests/*.txt): one tensor per line,
// "name<TAB>[d0, d1, ...]". Blank lines and lines starting with '#' are skipped.
func ReadManifest(path string) ([]Request, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	defer f.Close()
	var out []Request
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		r, err := parseManifestLine(text)
		if err != nil {
			return nil, fmt.Errorf("weights: manifest %s line %d: %w", path, line, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("weights: manifest %s: %w", path, err)
	}
	return out, nil
}

func parseManifestLine(text string) (Request, error) {
	i := strings.IndexAny(text, "\t ")
	if i < 0 {
		return Request{}, fmt.Errorf("%q: want name<TAB>[shape]", text)
	}
	name, sh := text[:i], strings.TrimSpace(text[i+1:])
	if !strings.HasPrefix(sh, "[") || !strings.HasSuffix(sh, "]") {
		return Request{}, fmt.Errorf("%q: shape %q is not [d0, d1, ...]", text, sh)
	}
	shape := []int{}
	if inner := strings.TrimSpace(sh[1 : len(sh)-1]); inner != "" {
		for _, f := range strings.Split(inner, ",") {
			d, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || d < 0 {
				return Request{}, fmt.Errorf("%q: bad dimension %q", text, f)
			}
			shape = append(shape, d)
		}
	}
	return Request{Name: name, Shape: shape}, nil
}

// DiffManifest compares the tensors a model requested (got, e.g. (*Store).Requested) against
// a manifest (want), ignoring order. It returns "" when they agree: every listed tensor
// requested once with its listed shape and nothing else. Otherwise it returns one line per
// problem: "missing NAME [shape]", "extra NAME [shape]", "shape NAME: got [..], want [..]",
// "repeated NAME (n times)".
func DiffManifest(want, got []Request) string {
	wantShape := map[string][]int{}
	for _, r := range want {
		wantShape[r.Name] = r.Shape
	}
	count := map[string]int{}
	var b strings.Builder
	for _, r := range got {
		count[r.Name]++
		if count[r.Name] > 1 {
			continue
		}
		ws, ok := wantShape[r.Name]
		switch {
		case !ok:
			fmt.Fprintf(&b, "extra %s %s\n", r.Name, formatShape(r.Shape))
		case !equalShape(ws, r.Shape):
			fmt.Fprintf(&b, "shape %s: got %s, want %s\n", r.Name, formatShape(r.Shape), formatShape(ws))
		}
	}
	for _, r := range want {
		if count[r.Name] == 0 {
			fmt.Fprintf(&b, "missing %s %s\n", r.Name, formatShape(r.Shape))
		}
	}
	for _, r := range got {
		if n := count[r.Name]; n > 1 {
			fmt.Fprintf(&b, "repeated %s (%d times)\n", r.Name, n)
			count[r.Name] = 1
		}
	}
	return b.String()
}
