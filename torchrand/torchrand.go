// Package torchrand reproduces PyTorch's CPU random number generator (torch 1.13) bit for bit
// where it matters for Stable Diffusion: torch.Generator().manual_seed(seed) and
// torch.randn(shape, generator=g) in float32, so a seed gives the same initial latents as
// diffusers.
//
// The generator is a 32-bit Mersenne Twister (mt19937) seeded with the low 32 bits of the
// seed, exactly as at::mt19937 does. Float32 uniforms use 24 random bits; float64 uniforms use
// 53 bits drawn from two 32-bit outputs. torch.randn on a contiguous float32 tensor of at least
// 16 elements fills the tensor with uniforms and turns each block of 16 into normals with
// Box–Muller (the first 8 as radii, the last 8 as angles), redrawing the final 16 values when
// the size is not a multiple of 16. Smaller tensors take torch's scalar path: double-precision
// Box–Muller whose second normal is cached in the generator for the next call.
package torchrand

import "math"

const (
	mtN         = 624
	mtM         = 397
	matrixA     = 0x9908b0df
	upperMask   = 0x80000000
	lowerMask   = 0x7fffffff
	blockSize   = 16 // torch's normal_fill works in blocks of 16 values
	float24Mask = 1<<24 - 1
	float53Mask = 1<<53 - 1
)

// Generator is the state of one torch CPU generator: an mt19937 engine plus the cached second
// normal of the double-precision scalar path. It keeps its state across draws like torch's, so
// consecutive calls continue the same stream.
//
// A Generator is not safe for concurrent use; give each goroutine (each generation) its own.
type Generator struct {
	state [mtN]uint32
	index int
	seed  uint64

	// torch keeps the second Box–Muller value of normal_distribution<double> here.
	nextDoubleNormal    float64
	hasNextDoubleNormal bool
}

// New returns a generator seeded like torch.Generator().manual_seed(seed).
func New(seed uint64) *Generator {
	g := &Generator{}
	g.Seed(seed)
	return g
}

// Seed resets g as torch's manual_seed does: the Mersenne Twister is initialised from the low
// 32 bits of seed and the cached normal is discarded.
func (g *Generator) Seed(seed uint64) {
	g.seed = seed
	g.state[0] = uint32(seed)
	for j := 1; j < mtN; j++ {
		prev := g.state[j-1]
		g.state[j] = 1812433253*(prev^(prev>>30)) + uint32(j)
	}
	g.index = mtN
	g.hasNextDoubleNormal = false
	g.nextDoubleNormal = 0
}

// InitialSeed returns the seed g was last seeded with (torch's initial_seed).
func (g *Generator) InitialSeed() uint64 { return g.seed }

func (g *Generator) twist() {
	for i := 0; i < mtN; i++ {
		y := (g.state[i] & upperMask) | (g.state[(i+1)%mtN] & lowerMask)
		v := g.state[(i+mtM)%mtN] ^ (y >> 1)
		if y&1 != 0 {
			v ^= matrixA
		}
		g.state[i] = v
	}
	g.index = 0
}

// Uint32 returns the engine's next 32-bit output (torch's generator->random()).
func (g *Generator) Uint32() uint32 {
	if g.index >= mtN {
		g.twist()
	}
	y := g.state[g.index]
	g.index++
	y ^= y >> 11
	y ^= (y << 7) & 0x9d2c5680
	y ^= (y << 15) & 0xefc60000
	y ^= y >> 18
	return y
}

// Uint64 returns two engine outputs joined high word first (torch's generator->random64()).
func (g *Generator) Uint64() uint64 {
	hi := uint64(g.Uint32())
	lo := uint64(g.Uint32())
	return hi<<32 | lo
}

// Float32 returns a uniform value in [0, 1) made from 24 random bits, as
// at::uniform_real_distribution<float>(0, 1).
func (g *Generator) Float32() float32 {
	return float32(g.Uint32()&float24Mask) * (1.0 / (1 << 24))
}

// Float64 returns a uniform value in [0, 1) made from 53 random bits, as
// at::uniform_real_distribution<double>(0, 1).
func (g *Generator) Float64() float64 {
	return float64(g.Uint64()&float53Mask) * (1.0 / (1 << 53))
}

// NormFloat64 returns one standard normal value from torch's scalar path
// (at::normal_distribution<double>): Box–Muller on two double uniforms, the sine half cached in
// the generator and returned by the next call.
func (g *Generator) NormFloat64() float64 {
	if g.hasNextDoubleNormal {
		g.hasNextDoubleNormal = false
		return g.nextDoubleNormal
	}
	u1 := g.Float64()
	u2 := g.Float64()
	r := math.Sqrt(-2 * math.Log(1-u2))
	theta := 2 * math.Pi * u1
	g.nextDoubleNormal = r * math.Sin(theta)
	g.hasNextDoubleNormal = true
	return r * math.Cos(theta)
}

// Randn returns torch.randn(shape, generator=g) for a float32 CPU tensor: the values in
// row-major order. An empty shape is a scalar (one value); a zero dimension gives no values.
// It panics, as make does, if a dimension is negative or the element count overflows int;
// callers that take shapes from users check them first (the pipeline bounds every size).
func (g *Generator) Randn(shape ...int) []float32 {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic("torchrand: negative dimension in Randn shape")
		}
		if d != 0 && n > math.MaxInt/d {
			panic("torchrand: Randn shape's element count overflows int")
		}
		n *= d
	}
	out := make([]float32, n)
	g.FillNormal(out)
	return out
}

// FillNormal fills dst with standard normal values exactly as torch.randn would fill a
// contiguous float32 tensor of len(dst) elements.
func (g *Generator) FillNormal(dst []float32) {
	n := len(dst)
	if n < blockSize {
		for i := range dst {
			dst[i] = float32(g.NormFloat64())
		}
		return
	}
	for i := range dst {
		dst[i] = g.Float32()
	}
	for i := 0; i+blockSize <= n; i += blockSize {
		boxMuller16(dst[i : i+blockSize])
	}
	if n%blockSize != 0 {
		// torch redraws the last 16 values and transforms them again.
		tail := dst[n-blockSize:]
		for i := range tail {
			tail[i] = g.Float32()
		}
		boxMuller16(tail)
	}
}

// boxMuller16 is torch's normal_fill_16 in float32 arithmetic (as its AVX2 kernel computes it):
// the first 8 uniforms give radii, the last 8 angles. Rounding θ to float32 before the cosine,
// as torch does, matters at the 1e-6 level.
func boxMuller16(d []float32) {
	const twoPi = float32(2 * math.Pi)
	for j := 0; j < blockSize/2; j++ {
		u1 := 1 - d[j] // [0,1) -> (0,1] for the log
		u2 := d[j+blockSize/2]
		radius := float32(math.Sqrt(float64(-2 * float32(math.Log(float64(u1))))))
		theta := float64(twoPi * u2)
		d[j] = radius * float32(math.Cos(theta))
		d[j+blockSize/2] = radius * float32(math.Sin(theta))
	}
}
