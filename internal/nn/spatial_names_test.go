package nn

import (
	"strings"
	"testing"

	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/tensor"
)

// TestSpatialAttentionNames checks that NewSpatialAttention reads the diffusers names, detects
// the pre-0.14 ones, honours explicit Names and names the missing tensor otherwise.
func TestSpatialAttentionNames(t *testing.T) {
	const c = 4
	store := func(names AttentionNames) weights.View {
		m := map[string]*tensor.Dense{
			"a.group_norm.weight": tensor.New(tensor.WithShape(c), tensor.Of(tensor.Float32)),
			"a.group_norm.bias":   tensor.New(tensor.WithShape(c), tensor.Of(tensor.Float32)),
		}
		for _, n := range []string{names.Q, names.K, names.V, names.Out} {
			m["a."+n+".weight"] = tensor.New(tensor.WithShape(c, c), tensor.Of(tensor.Float32))
			m["a."+n+".bias"] = tensor.New(tensor.WithShape(c), tensor.Of(tensor.Float32))
		}
		s, err := weights.FromTensors("test", m)
		if err != nil {
			t.Fatal(err)
		}
		return s.View().Sub("a")
	}
	custom := AttentionNames{"q", "k", "v", "o"}
	for _, tc := range []struct {
		label  string
		stored AttentionNames
		cfg    AttentionNames
		want   AttentionNames
	}{
		{"diffusers", DiffusersNames(), AttentionNames{}, DiffusersNames()},
		{"legacy detected", LegacyAttentionNames(), AttentionNames{}, LegacyAttentionNames()},
		{"explicit", custom, custom, custom},
	} {
		a, err := NewSpatialAttention(store(tc.stored), SpatialAttentionConfig{Channels: c, Groups: 2, Names: tc.cfg})
		if err != nil {
			t.Fatalf("%s: %v", tc.label, err)
		}
		got := []string{a.Attn.Q.Weight.Name, a.Attn.K.Weight.Name, a.Attn.V.Weight.Name, a.Attn.Out.Weight.Name}
		for i, n := range []string{tc.want.Q, tc.want.K, tc.want.V, tc.want.Out} {
			if want := "a." + n + ".weight"; got[i] != want {
				t.Errorf("%s: projection %d read %q, want %q", tc.label, i, got[i], want)
			}
		}
		t.Logf("%s: read %v", tc.label, got)
	}
	_, err := NewSpatialAttention(store(custom), SpatialAttentionConfig{Channels: c, Groups: 2})
	if err == nil || !strings.Contains(err.Error(), "a.to_q.weight") {
		t.Errorf("neither naming scheme: err = %v, want one naming a.to_q.weight", err)
	}
	t.Logf("neither naming scheme: %v", err)
}
