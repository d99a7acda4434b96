//go:build !unix

package weights

// mmapSupported says whether weights files are memory-mapped on this platform.
const mmapSupported = false
