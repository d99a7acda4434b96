//go:build !linux

package pipeline

// physicalMemory is unknown here (0): DefaultMemoryBudget falls back to 4 GiB.
func physicalMemory() int64 { return 0 }
