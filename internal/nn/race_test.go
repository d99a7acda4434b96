//go:build race

package nn

// raceBuild: the race detector makes sync.Pool drop items at random, so allocation counts mean
// nothing under -race.
const raceBuild = true
