package kernels

import (
	"sort"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
)

// logWorst logs the largest error measured on each path (the keys of worst, sorted) in
// golden.Within's form, and fails t where one exceeds limit.
func logWorst(t *testing.T, label, kind string, worst map[string]float64, limit float64) {
	t.Helper()
	paths := make([]string, 0, len(worst))
	for p := range worst {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		golden.Within(t, label+" "+p, kind, worst[p], limit)
	}
}
