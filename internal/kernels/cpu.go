package kernels

import "golang.org/x/sys/cpu"

// useAVX2 reports whether the AVX2+FMA assembly paths may run. Tests flip it to compare the
// assembly with the plain-Go twins on the same inputs.
var useAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA
