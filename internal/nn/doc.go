// Package nn is the bridge between smallsd's models and its kernels: project-owned gorgonia Ops
// that call internal/kernels, layers that add nodes to a gorgonia graph from a weights view (named
// and shaped as diffusers names them), and an executor that runs a compiled graph reusing memory.
//
// # Graph operations
//
// Functions such as Affine, Conv, GroupNormalize, LayerNormalize, Attend, SiLU, GELU, QuickGELU,
// GEGLU, Add, AddBroadcast, AddChannelBias, Scale, Upsample2x, ResizeNearest, Pad2D, Concat,
// Reshape, SliceBatch, ToTokens, FromTokens, TimestepEmbed and Embed each add one node whose Op
// (*Op) runs an internal/kernels routine. They check shapes when the node is built and return
// errors. Conv runs 3×3 stride-1 convolutions with many output tiles as Winograd F(4×4, 3×3)
// (kernels.Conv2DWinogradW; the choice per shape is useWinograd's, from measurements) and the
// rest as a direct implicit GEMM. Reshape and SliceBatch are views: the executor aliases them without copying. Never use
// gorgonia's own Conv2d, Mul, BatchedMatMul, GroupNorm, Upsample2D or Broadcast* on real sizes
// (see DESIGN.md).
//
// # Layers
//
// Each layer mirrors a diffusers (or transformers) module: a constructor takes a weights.View
// and a config and walks into children with w.Sub("norm1") and so on, so checkpoint names appear
// only there; Forward adds nodes to the graph of its input and reads like the PyTorch forward.
// Weights are graph inputs bound to the store's tensors (Param.Node) and are never written.
// When the View prefers half weights (weights.WithHalf, weights.View.Half), Linear and Conv2d
// keep their weight matrices as fp16 bits inside the op instead (Param.Half, AffineHalf,
// ConvHalf); biases and norm weights stay float32 graph inputs.
// Layers: Linear, Conv2d, GroupNorm, LayerNorm, Embedding, Attention (diffusers' to_q/to_k/to_v/
// to_out.0 or CLIP's q_proj/…/out_proj, self or cross, optional causal mask), FeedForward (GEGLU),
// BasicTransformerBlock, Transformer2DModel, SpatialAttention (the VAE's), ResnetBlock2D,
// Downsample2D, Upsample2D, Timesteps and TimestepEmbedding. BasicTransformerBlock and
// Transformer2DModel have ForwardTaps, which also hands the inner modules' outputs to a
// callback under diffusers' module names (for comparing with recorded intermediate outputs).
//
// # How a model uses this package
//
// Build the layers once from the weights, build a graph per input shape, compile it, run it
// for every step:
//
//	res, err := nn.NewResnetBlock2D(w.Sub("down_blocks.0").Sub("resnets.0"), 320, nn.ResnetBlock2DConfig{Out: 320, TembChannels: 1280, Eps: 1e-5})
//	g := gorgonia.NewGraph()
//	x := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(2, 320, 64, 64), gorgonia.WithName("x"))
//	temb := gorgonia.NewTensor(g, tensor.Float32, 2, gorgonia.WithShape(2, 1280), gorgonia.WithName("temb"))
//	y, err := res.Forward(x, temb)                                   // adds nodes, checks shapes
//	prog, err := nn.Compile(g, []*gorgonia.Node{x, temb}, []*gorgonia.Node{y}) // taps: more outputs
//	for _, t := range timesteps {
//		out, err := prog.Run(ctx, xValue, tembValue)                // out[0] valid until the next Run
//		_ = out[0].Data().([]float32)
//	}
//
// A model keeps each error (omitted above). Program.PeakBytes reports the memory its
// intermediates need; Run checks the context between ops and never writes into its inputs.
//
// # Runner: how a model runs
//
// Models do not keep Programs themselves: each has one Runner (NewRunner) given a BuildFunc
// that builds and compiles the forward for the input shapes. The Runner compiles a Program per
// shape on first use and keeps it in a Cache bounded in bytes of buffers (least recently used
// dropped first; one Cache may be shared by a pipeline's models), lets concurrent callers of one
// shape take turns, copies the outputs for the caller (Run; RunFunc lends them instead), and
// has a Close that cancels and waits for the calls in flight before releasing the weights
// (WithRelease). Every call after Close returns ErrClosed, which the model packages re-export.
// Runner.Call wraps other work that reads the weights (one-off programs for taps) the same way.
package nn
