//go:build unix

package pipeline

// mmapWeights says whether weights files are memory-mapped (so releasable) on this platform.
const mmapWeights = true
