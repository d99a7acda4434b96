package pipeline

import "fmt"

// Precision is the number format of the models' matrix products (every Linear and Conv2d).
type Precision int

const (
	// FP32 (the default) computes in float32 throughout: results agree with diffusers' fp32.
	FP32 Precision = iota
	// BF16 keeps the weight matrices of every Linear and Conv2d as bfloat16 in memory (half the
	// weight memory, from fp32, fp16 or bf16 files) and, on CPUs with AVX512-BF16 where its dot
	// products beat float32 FMAs (measured at first use), rounds those layers' and the
	// attention's inputs to bf16 and multiplies with them, accumulating in float32. Norms,
	// softmax, activations, biases and the scheduler stay float32. Elsewhere the weights are
	// widened to float32 while packing (memory halves, speed is that of FP32). Images differ slightly from FP32's (see the README's accuracy table).
	BF16
)

// String returns "fp32" or "bf16".
func (p Precision) String() string {
	switch p {
	case FP32:
		return "fp32"
	case BF16:
		return "bf16"
	}
	return fmt.Sprintf("Precision(%d)", int(p))
}

// ParsePrecision reads "fp32" or "bf16" ("" means fp32).
func ParsePrecision(s string) (Precision, error) {
	switch s {
	case "", "fp32":
		return FP32, nil
	case "bf16":
		return BF16, nil
	}
	return FP32, fmt.Errorf("pipeline: precision %q: want fp32 or bf16", s)
}

// WithPrecision sets the precision of the models' matrix products (FP32 by default). BF16 takes
// precedence over WithHalfWeights.
func WithPrecision(p Precision) Option { return func(o *loadOptions) { o.precision = p } }
