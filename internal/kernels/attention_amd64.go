package kernels

// attnPrefetch prefetches n bytes at p, p+stride, … (stride in bytes) for rows rows.
//
//go:noescape
func attnPrefetch(p *float32, rows, stride, n int)
