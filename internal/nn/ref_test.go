package nn

import (
	"math"

	"gorgonia.org/tensor"
)

// Naive float64 reference implementations of the operations, written as directly from the
// PyTorch definitions as possible, for the tests.

type arr struct {
	shape []int
	d     []float64
}

func newArr(shape ...int) arr { return arr{shape: shape, d: make([]float64, shapeSize(shape))} }

func arrOf(t *tensor.Dense) arr {
	a := newArr(t.Shape()...)
	for i, v := range t.Float32s()[:t.Size()] {
		a.d[i] = float64(v)
	}
	return a
}

func (a arr) clone() arr {
	return arr{shape: append([]int(nil), a.shape...), d: append([]float64(nil), a.d...)}
}

func (a arr) map1(f func(float64) float64) arr {
	b := a.clone()
	for i, v := range b.d {
		b.d[i] = f(v)
	}
	return b
}

func refAdd(a, b arr) arr {
	c := a.clone()
	for i := range c.d {
		c.d[i] += b.d[i]
	}
	return c
}

func refSiLU(x float64) float64      { return x / (1 + math.Exp(-x)) }
func refGELU(x float64) float64      { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }
func refQuickGELU(x float64) float64 { return x / (1 + math.Exp(-1.702*x)) }

// refLinear: x …×in, w out×in, b out or empty.
func refLinear(x, w, b arr) arr {
	in, out := w.shape[1], w.shape[0]
	rows := len(x.d) / in
	shape := append(append([]int(nil), x.shape[:len(x.shape)-1]...), out)
	y := newArr(shape...)
	for r := 0; r < rows; r++ {
		for o := 0; o < out; o++ {
			s := 0.0
			if len(b.d) > 0 {
				s = b.d[o]
			}
			for i := 0; i < in; i++ {
				s += x.d[r*in+i] * w.d[o*in+i]
			}
			y.d[r*out+o] = s
		}
	}
	return y
}

func refConv(x, w, b arr, stride, pad int) arr {
	n, c, h, wd := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	k, kh, kw := w.shape[0], w.shape[2], w.shape[3]
	oh, ow := (h+2*pad-kh)/stride+1, (wd+2*pad-kw)/stride+1
	y := newArr(n, k, oh, ow)
	for ni := 0; ni < n; ni++ {
		for ki := 0; ki < k; ki++ {
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					s := 0.0
					if len(b.d) > 0 {
						s = b.d[ki]
					}
					for ci := 0; ci < c; ci++ {
						for dy := 0; dy < kh; dy++ {
							for dx := 0; dx < kw; dx++ {
								iy, ix := oy*stride-pad+dy, ox*stride-pad+dx
								if iy < 0 || iy >= h || ix < 0 || ix >= wd {
									continue
								}
								s += x.d[((ni*c+ci)*h+iy)*wd+ix] * w.d[((ki*c+ci)*kh+dy)*kw+dx]
							}
						}
					}
					y.d[((ni*k+ki)*oh+oy)*ow+ox] = s
				}
			}
		}
	}
	return y
}

func refGroupNorm(x, gamma, beta arr, groups int, eps float64) arr {
	n, c := x.shape[0], x.shape[1]
	hw := len(x.d) / (n * c)
	cg := c / groups
	y := x.clone()
	for ni := 0; ni < n; ni++ {
		for g := 0; g < groups; g++ {
			seg := y.d[(ni*c+g*cg)*hw : (ni*c+(g+1)*cg)*hw]
			mean, vr := 0.0, 0.0
			for _, v := range seg {
				mean += v
			}
			mean /= float64(len(seg))
			for _, v := range seg {
				vr += (v - mean) * (v - mean)
			}
			vr /= float64(len(seg))
			for i := range seg {
				ch := g*cg + i/hw
				seg[i] = (seg[i]-mean)/math.Sqrt(vr+eps)*gamma.d[ch] + beta.d[ch]
			}
		}
	}
	return y
}

func refLayerNorm(x, gamma, beta arr, eps float64) arr {
	c := x.shape[len(x.shape)-1]
	y := x.clone()
	for r := 0; r < len(x.d)/c; r++ {
		row := y.d[r*c : (r+1)*c]
		mean, vr := 0.0, 0.0
		for _, v := range row {
			mean += v
		}
		mean /= float64(c)
		for _, v := range row {
			vr += (v - mean) * (v - mean)
		}
		vr /= float64(c)
		for i := range row {
			row[i] = (row[i]-mean)/math.Sqrt(vr+eps)*gamma.d[i] + beta.d[i]
		}
	}
	return y
}

// refAttention: q B×Nq×(H·D), k, v B×Nk×(H·D).
func refAttention(q, k, v arr, heads int, scale float64, causal bool) arr {
	b, nq, w := q.shape[0], q.shape[1], q.shape[2]
	nk := k.shape[1]
	d := w / heads
	out := newArr(b, nq, w)
	for bi := 0; bi < b; bi++ {
		for h := 0; h < heads; h++ {
			for i := 0; i < nq; i++ {
				s := make([]float64, nk)
				mx := math.Inf(-1)
				for j := 0; j < nk; j++ {
					if causal && j > i {
						s[j] = math.Inf(-1)
						continue
					}
					dot := 0.0
					for e := 0; e < d; e++ {
						dot += q.d[(bi*nq+i)*w+h*d+e] * k.d[(bi*nk+j)*w+h*d+e]
					}
					s[j] = dot * scale
					mx = math.Max(mx, s[j])
				}
				sum := 0.0
				for j := range s {
					s[j] = math.Exp(s[j] - mx)
					sum += s[j]
				}
				for e := 0; e < d; e++ {
					acc := 0.0
					for j := 0; j < nk; j++ {
						acc += s[j] / sum * v.d[(bi*nk+j)*w+h*d+e]
					}
					out.d[(bi*nq+i)*w+h*d+e] = acc
				}
			}
		}
	}
	return out
}

// refToTokens: N×C×H×W → N×(HW)×C.
func refToTokens(x arr) arr {
	n, c, hw := x.shape[0], x.shape[1], x.shape[2]*x.shape[3]
	y := newArr(n, hw, c)
	for ni := 0; ni < n; ni++ {
		for ci := 0; ci < c; ci++ {
			for p := 0; p < hw; p++ {
				y.d[(ni*hw+p)*c+ci] = x.d[(ni*c+ci)*hw+p]
			}
		}
	}
	return y
}

func refFromTokens(x arr, h, w int) arr {
	n, hw, c := x.shape[0], x.shape[1], x.shape[2]
	y := newArr(n, c, h, w)
	for ni := 0; ni < n; ni++ {
		for ci := 0; ci < c; ci++ {
			for p := 0; p < hw; p++ {
				y.d[(ni*c+ci)*hw+p] = x.d[(ni*hw+p)*c+ci]
			}
		}
	}
	return y
}

func refUpsample(x arr) arr {
	n, c, h, w := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	y := newArr(n, c, 2*h, 2*w)
	for p := 0; p < n*c; p++ {
		for oy := 0; oy < 2*h; oy++ {
			for ox := 0; ox < 2*w; ox++ {
				y.d[(p*2*h+oy)*2*w+ox] = x.d[(p*h+oy/2)*w+ox/2]
			}
		}
	}
	return y
}

func refPad(x arr, top, bottom, left, right int) arr {
	n, c, h, w := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	oh, ow := h+top+bottom, w+left+right
	y := newArr(n, c, oh, ow)
	for p := 0; p < n*c; p++ {
		for iy := 0; iy < h; iy++ {
			for ix := 0; ix < w; ix++ {
				y.d[(p*oh+iy+top)*ow+ix+left] = x.d[(p*h+iy)*w+ix]
			}
		}
	}
	return y
}

// refChannelBias adds bias (N×C, or C) over the trailing axes of x.
func refChannelBias(x, bias arr) arr {
	n, c := x.shape[0], x.shape[1]
	hw := len(x.d) / (n * c)
	y := x.clone()
	for i := range y.d {
		ni, ci := i/(c*hw), i/hw%c
		if len(bias.d) == n*c && len(bias.shape) == 2 {
			y.d[i] += bias.d[ni*c+ci]
		} else {
			y.d[i] += bias.d[ci]
		}
	}
	return y
}

func refGEGLU(x arr) arr {
	c2 := x.shape[len(x.shape)-1]
	c := c2 / 2
	shape := append(append([]int(nil), x.shape[:len(x.shape)-1]...), c)
	y := newArr(shape...)
	for r := 0; r < len(x.d)/c2; r++ {
		for i := 0; i < c; i++ {
			y.d[r*c+i] = x.d[r*c2+i] * refGELU(x.d[r*c2+c+i])
		}
	}
	return y
}

func refTimesteps(t []float64, dim int, flip bool, shift float64) arr {
	half := dim / 2
	y := newArr(len(t), dim)
	for r, tv := range t {
		for i := 0; i < half; i++ {
			arg := tv * math.Exp(-math.Log(10000)*float64(i)/(float64(half)-shift))
			s, c := math.Sin(arg), math.Cos(arg)
			if flip {
				s, c = c, s
			}
			y.d[r*dim+i], y.d[r*dim+half+i] = s, c
		}
	}
	return y
}

// refResize follows torch's nearest rule with a float64 scale (identical for these sizes).
func refResize(x arr, oh, ow int) arr {
	n, c, h, w := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	y := newArr(n, c, oh, ow)
	for p := 0; p < n*c; p++ {
		for oy := 0; oy < oh; oy++ {
			iy := min(int(math.Floor(float64(oy)*float64(h)/float64(oh))), h-1)
			for ox := 0; ox < ow; ox++ {
				ix := min(int(math.Floor(float64(ox)*float64(w)/float64(ow))), w-1)
				y.d[(p*oh+oy)*ow+ox] = x.d[(p*h+iy)*w+ix]
			}
		}
	}
	return y
}
