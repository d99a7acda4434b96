package kernels

// Sgemm computes C = alpha·op(A)·op(B) + beta·C on row-major matrices; op(A) is m×k, op(B) is k×n;
// transA means A is stored k×m (lda ≥ m), transB means B is stored n×k (ldb ≥ k). beta == 0 ignores
// C's old contents (NaN-safe).
//
// The product runs through packed, cache-blocked panels and register-blocked micro-kernels (12×32
// AVX-512 or 6×16 AVX2/FMA assembly when available, else plain Go) on up to GOMAXPROCS
// goroutines; any m, n, k and leading dimensions work. Sgemm may be called concurrently; its
// scratch buffers come from pools, so after warm-up it does not allocate on one core (parallel
// runs cost a few small allocations for the goroutines).
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m <= 0 || n <= 0 {
		return
	}
	sa := sgemmSrc{data: a, ld: lda, trans: transA}
	sb := sgemmSrc{data: b, ld: ldb, trans: transB}
	sgemmRun(m, n, k, alpha, &sa, &sb, beta, c, ldc, 0, 0, nil, false)
}

// sgemmGeneric is the plain-Go twin of Sgemm: obviously correct loops, used as the test oracle.
func sgemmGeneric(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		ci := c[i*ldc : i*ldc+n]
		switch beta {
		case 0:
			clear(ci)
		case 1:
		default:
			for j := range ci {
				ci[j] *= beta
			}
		}
		if alpha == 0 {
			continue
		}
		for p := 0; p < k; p++ {
			var aip float32
			if transA {
				aip = a[p*lda+i]
			} else {
				aip = a[i*lda+p]
			}
			aip *= alpha
			if transB {
				for j := range ci {
					ci[j] += aip * b[j*ldb+p]
				}
			} else {
				bp := b[p*ldb : p*ldb+n]
				for j, bv := range bp {
					ci[j] += aip * bv
				}
			}
		}
	}
}
