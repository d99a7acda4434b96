package weights

import "testing"

func TestZerosRecordsRequests(t *testing.T) {
	s := NewZeros()
	v := s.View().Sub("down_blocks.0")
	a, err := v.Tensor("conv1.weight", 320, 4, 3, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range a.Data().([]float32) {
		if x != 0 {
			t.Fatalf("zero store returned %v", x)
		}
	}
	if _, err := v.Tensor("conv1.bias", 320); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Tensor("no.shape"); err == nil {
		t.Error("a request without a shape gave no error")
	}
	want := []Request{{Name: "down_blocks.0.conv1.weight", Shape: []int{320, 4, 3, 3}}, {Name: "down_blocks.0.conv1.bias", Shape: []int{320}}}
	got := s.Requested()
	if len(got) < 2 {
		t.Fatalf("Requested() = %v", got)
	}
	if d := DiffManifest(want, got[:2]); d != "" {
		t.Errorf("requests differ from what was asked:\n%s", d)
	}
	t.Logf("recorded %d requests", len(got))
}
