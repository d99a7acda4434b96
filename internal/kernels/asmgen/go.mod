module github.com/smallsd/smallsd/internal/kernels/asmgen

go 1.26.0
