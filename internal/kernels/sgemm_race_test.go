//go:build race

package kernels

// sgemmRace is set under the race detector, where sync.Pool drops items at random.
const sgemmRace = true
