// Package benchutil holds what the models' benchmarks share: the process's CPU time, and running
// several variants of one workload in alternation.
package benchutil

import (
	"slices"
	"testing"
	"time"
)

// Alternate runs variant f (0 ≤ f < len(names)) of a workload once per variant per iteration, in
// turn, so that other work on the machine weighs on every variant alike, after one untimed run of
// each (compilation, first-use packing). It reports each variant's median and best CPU seconds
// and median wall seconds per run as NAME-cpu-s, NAME-best-cpu-s and NAME-s, and logs every run's
// figures; unit names one run in the log ("forward", "decode").
func Alternate(b *testing.B, names []string, unit string, run func(f int) error) {
	b.Helper()
	once := func(f int) (cpu, wall float64) {
		c0, t0 := CPUSeconds(), time.Now()
		if err := run(f); err != nil {
			b.Fatalf("%s: %v", names[f], err)
		}
		return CPUSeconds() - c0, time.Since(t0).Seconds()
	}
	for f := range names {
		once(f)
	}
	cpu, wall := make([][]float64, len(names)), make([][]float64, len(names))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for f := range names {
			c, w := once(f)
			cpu[f], wall[f] = append(cpu[f], c), append(wall[f], w)
		}
	}
	b.StopTimer()
	for f, name := range names {
		slices.Sort(cpu[f])
		slices.Sort(wall[f])
		b.ReportMetric(cpu[f][len(cpu[f])/2], name+"-cpu-s")
		b.ReportMetric(cpu[f][0], name+"-best-cpu-s")
		b.ReportMetric(wall[f][len(wall[f])/2], name+"-s")
		b.Logf("%s: CPU-s per %s %.3f, wall s %.3f", name, unit, cpu[f], wall[f])
	}
}

// CPUSeconds is CPUTime in seconds.
func CPUSeconds() float64 { return CPUTime().Seconds() }
