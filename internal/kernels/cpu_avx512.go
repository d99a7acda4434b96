package kernels

import "golang.org/x/sys/cpu"

// useAVX512 reports whether the AVX-512 SGEMM kernels (12×32 tiles in zmm registers) may run; they
// are used only together with the AVX2 path (useAVX2), so turning that off selects plain Go. Tests
// flip it to compare the two assembly paths and plain Go on the same inputs.
var useAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL && cpu.X86.HasAVX2 && cpu.X86.HasFMA

// useAVX512DQ reports whether the AVX-512 element-wise kernels that need AVX512DQ (VPMOVD2M) may
// run: with useAVX512 and the DQ extension. Tests flip it like useAVX512.
var useAVX512DQ = useAVX512 && cpu.X86.HasAVX512DQ
