package unet

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/smallsd/smallsd/internal/nn"
	"github.com/smallsd/smallsd/lora"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ErrClosed is returned (wrapped) by every call on a closed Model; it is the same value as
// clip.ErrClosed, vae.ErrClosed and pipeline.ErrClosed.
var ErrClosed = nn.ErrClosed

// Model is diffusers' UNet2DConditionModel for the SD 1.x family: it predicts the noise in a
// latent sample at a timestep, conditioned on text hidden states. A graph is compiled per
// input shape on first use and cached (in a byte-bounded cache, see SetCacheLimit); a Model is
// safe for concurrent use (calls with the same shape take turns), and Close waits for the calls
// in flight.
type Model struct {
	cfg   Config
	store *weights.Store // owned when built by Load

	convIn        *nn.Conv2d
	timeProj      *nn.Timesteps
	timeEmbedding *nn.TimestepEmbedding
	downBlocks    []*downBlock
	midBlock      *midBlock // nil without one
	upBlocks      []*upBlock
	convNormOut   *nn.GroupNorm
	convOut       *nn.Conv2d

	runner *nn.Runner
	lora   nn.LoRARunners // one runner per set of patched layers (ForwardLoRA)
}

// New builds the UNet described by cfg from the weights under w (the unet component's tensors,
// named as diffusers names them). Missing or mis-shaped tensors are errors naming them.
func New(cfg Config, w weights.View) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := len(cfg.BlockOutChannels)
	ch := cfg.BlockOutChannels
	eps := float32(cfg.NormEps)
	temb := cfg.timeEmbedDim()
	m := &Model{cfg: cfg}
	m.runner = nn.NewRunner("unet", func(shapes ...tensor.Shape) (*nn.Program, error) {
		return m.compile(shapes[0], shapes[2], nil)
	})
	var err error
	if m.convIn, err = nn.NewConv2d(w.Sub("conv_in"), cfg.InChannels, ch[0], cfg.ConvInKernel, 1, (cfg.ConvInKernel-1)/2); err != nil {
		return nil, err
	}
	m.timeProj = nn.NewTimesteps(ch[0], cfg.FlipSinToCos, float32(cfg.FreqShift))
	if m.timeEmbedding, err = nn.NewTimestepEmbedding(w.Sub("time_embedding"), ch[0], temb, cfg.ActFn); err != nil {
		return nil, err
	}
	level := func(i int, attn bool) blockConfig {
		bc := blockConfig{out: ch[i], temb: temb, layers: cfg.LayersPerBlock.At(i), heads: cfg.AttentionHeadDim.At(i),
			crossDim: cfg.CrossAttentionDim.At(i), groups: cfg.NormNumGroups, eps: eps, linearProj: cfg.UseLinearProjection}
		if attn {
			bc.transformers = cfg.TransformerLayersPerBlock.At(i)
		}
		return bc
	}
	for i, typ := range cfg.DownBlockTypes {
		bc := level(i, typ == CrossAttnDownBlock2D)
		bc.in = ch[max(i-1, 0)]
		b, err := newDownBlock(w.Sub(fmt.Sprintf("down_blocks.%d", i)), bc, i < n-1, cfg.DownsamplePadding)
		if err != nil {
			return nil, err
		}
		m.downBlocks = append(m.downBlocks, b)
	}
	if cfg.MidBlockType != "" {
		bc := level(n-1, true)
		bc.in = ch[n-1]
		bc.outputScale = float32(cfg.MidBlockScaleFactor)
		if m.midBlock, err = newMidBlock(w.Sub("mid_block"), bc); err != nil {
			return nil, err
		}
	}
	for i, typ := range cfg.UpBlockTypes {
		j := n - 1 - i // the level this up block mirrors: per-block settings are reversed
		bc := level(j, typ == CrossAttnUpBlock2D)
		bc.layers++
		bc.prevOut = ch[min(j+1, n-1)]
		bc.in = ch[max(j-1, 0)]
		b, err := newUpBlock(w.Sub(fmt.Sprintf("up_blocks.%d", i)), bc, i < n-1)
		if err != nil {
			return nil, err
		}
		m.upBlocks = append(m.upBlocks, b)
	}
	if m.convNormOut, err = nn.NewGroupNorm(w.Sub("conv_norm_out"), cfg.NormNumGroups, ch[0], eps); err != nil {
		return nil, err
	}
	if m.convOut, err = nn.NewConv2d(w.Sub("conv_out"), ch[0], cfg.OutChannels, cfg.ConvOutKernel, 1, (cfg.ConvOutKernel-1)/2); err != nil {
		return nil, err
	}
	return m, nil
}

// Load reads dir/config.json and the weights in dir (a diffusers unet folder: safetensors or
// PyTorch .bin; see weights.Open for opts) and builds the model. Tensors in the file that the
// model does not use are an error (they mean the config does not describe the checkpoint).
// The weights file stays open until Close.
func Load(dir string, opts ...weights.Option) (*Model, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	s, err := weights.Open(dir, opts...)
	if err != nil {
		return nil, err
	}
	m, err := New(cfg, s.View())
	if err == nil {
		if err = s.CheckAllUsed(); err != nil {
			err = fmt.Errorf("unet: %w", err)
		}
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	m.store = s
	return m, nil
}

// Config returns the model's configuration.
func (m *Model) Config() Config { return m.cfg }

// SetCacheLimit bounds the buffer memory of the compiled programs kept for reuse (one per input
// shape, about 0.5 GB for a 512×512 image with guidance): the least recently used are dropped
// beyond bytes, the last used is always kept. The default is 1 GiB (nn.DefaultCacheLimit).
func (m *Model) SetCacheLimit(bytes int64) { m.runner.Cache().SetLimit(bytes) }

// Runner returns the runner the model's calls go through (for sharing a cache with other
// models, as the pipeline does).
func (m *Model) Runner() *nn.Runner { return m.runner }

// ReleaseWeightPages takes the pages of the weights file the Model mapped (when made by Load)
// out of the process's resident memory until it next reads them (weights.Store.ReleasePages):
// for a model that is idle for a while. It stays usable; its next call faults the pages back
// in. It returns the bytes advised, 0 when the weights are not a mapped file of its own.
func (m *Model) ReleaseWeightPages() int64 {
	if m.store == nil {
		return 0
	}
	return m.store.ReleasePages()
}

// Close waits for the calls in flight (cancelling them: they return ErrClosed), then releases
// the compiled programs and the weights file of a model made by Load. Every later call returns
// ErrClosed; Close is idempotent.
func (m *Model) Close() error {
	if err := m.runner.Close(); err != nil {
		return err
	}
	if err := m.lora.Close(); err != nil {
		return err
	}
	if m.store != nil {
		return m.store.Close()
	}
	return nil
}

// dropPrograms forgets the compiled programs (their memory goes back to the garbage collector).
func (m *Model) dropPrograms() { m.runner.Release() }

// Forward predicts the noise in sample (N×in_channels×h×w, float32) at timestep (the same
// for the whole batch) given the text hidden states (N×L×cross_attention_dim). It returns a
// new N×out_channels×h×w tensor. Inputs are not modified.
func (m *Model) Forward(ctx context.Context, sample *tensor.Dense, timestep float64, text *tensor.Dense) (*tensor.Dense, error) {
	outs, err := m.run(ctx, sample, timestep, text, nil, nil)
	if err != nil {
		return nil, err
	}
	return outs[0], nil
}

// ForwardTaps runs the model like Forward and returns the intermediate outputs named by taps,
// diffusers module paths as the reference pipeline recorded them: "time_proj",
// "time_embedding", "conv_in", "down_blocks.0" (the block's output, after its downsampler),
// "down_blocks.0.resnets.0", "down_blocks.0.attentions.0" and inside it "norm", "proj_in",
// "transformer_blocks.0" and its "attn1", "attn2", "ff" (before their residual adds),
// "down_blocks.0.downsamplers.0", "mid_block", "mid_block.attentions.0",
// "up_blocks.0.upsamplers.0", "conv_norm_out" (GroupNorm before SiLU), "out" (the result), ….
// Programs for taps are compiled per call, not cached.
func (m *Model) ForwardTaps(ctx context.Context, sample *tensor.Dense, timestep float64, text *tensor.Dense, taps []string) (map[string]*tensor.Dense, error) {
	if len(taps) == 0 {
		return nil, fmt.Errorf("unet: ForwardTaps: no taps named")
	}
	outs, err := m.run(ctx, sample, timestep, text, taps, nil)
	if err != nil {
		return nil, err
	}
	res := make(map[string]*tensor.Dense, len(taps))
	for i, name := range taps {
		res[name] = outs[i]
	}
	return res, nil
}

// TapNames lists every name ForwardTaps accepts, sorted.
func (m *Model) TapNames() ([]string, error) {
	h := 1 << len(m.downBlocks)
	_, taps, err := m.build([]int{1, m.cfg.InChannels, h, h}, []int{1, 1, m.cfg.CrossAttentionDim.At(0)})
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(taps))
	for k := range taps {
		if !strings.HasPrefix(k, "in.") {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return names, nil
}

// run validates the inputs, gets (or compiles) the program and runs it. With taps, a fresh
// program computes the named nodes instead of the output. ups are low-rank updates (ForwardLoRA).
func (m *Model) run(ctx context.Context, sample *tensor.Dense, timestep float64, text *tensor.Dense, taps []string, ups lora.Updates) ([]*tensor.Dense, error) {
	if sample == nil || text == nil {
		return nil, fmt.Errorf("unet: Forward: nil input")
	}
	ss, ts := sample.Shape(), text.Shape()
	if sample.Dtype() != tensor.Float32 || len(ss) != 4 || ss[0] < 1 || ss[1] != m.cfg.InChannels || ss[2] < 1 || ss[3] < 1 {
		return nil, fmt.Errorf("unet: Forward: sample is %v %v, want float32 N×%d×h×w", sample.Dtype(), ss, m.cfg.InChannels)
	}
	if text.Dtype() != tensor.Float32 || len(ts) != 3 || ts[0] != ss[0] || ts[1] < 1 {
		return nil, fmt.Errorf("unet: Forward: text hidden states are %v %v, want float32 %d×L×cross_attention_dim", text.Dtype(), ts, ss[0])
	}
	for i := range m.cfg.BlockOutChannels {
		if d := m.cfg.CrossAttentionDim.At(i); ts[2] != d {
			return nil, fmt.Errorf("unet: Forward: text hidden states are %v, want width cross_attention_dim %d", ts, d)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	x := contiguous(sample)
	if m.cfg.CenterInputSample {
		x = centered(x)
	}
	t := make([]float32, ss[0])
	for i := range t {
		t[i] = float32(timestep)
	}
	inputs := []*tensor.Dense{x, tensor.New(tensor.WithShape(ss[0]), tensor.WithBacking(t)), contiguous(text)}
	inputs = append(inputs, nn.LoRAValues(ups)...)

	if taps == nil {
		if len(ups) > 0 {
			return m.runLoRA(ctx, ups, inputs)
		}
		return m.runner.Run(ctx, inputs...)
	}
	var res []*tensor.Dense
	err := m.runner.Call(ctx, func(ctx context.Context) error {
		prog, err := m.compileLoRA(ss, ts, taps, ups)
		if err != nil {
			return err
		}
		outs, err := prog.Run(ctx, inputs...)
		if err != nil {
			return fmt.Errorf("unet: %w", err)
		}
		res = make([]*tensor.Dense, len(outs))
		for i, o := range outs {
			res[i] = nn.Clone(o)
		}
		return nil
	})
	return res, err
}

// BufferBytes returns the bytes of working buffers a Forward on a sample of sampleShape
// (N×in_channels×h×w) with text hidden states of textShape (N×L×cross_attention_dim) needs,
// weights not counted. It compiles the program (kept for the Forward that follows) without
// allocating its buffers.
func (m *Model) BufferBytes(sampleShape, textShape []int) (int64, error) {
	if len(sampleShape) != 4 || len(textShape) != 3 || textShape[0] != sampleShape[0] {
		return 0, fmt.Errorf("unet: BufferBytes: shapes %v and %v, want N×C×h×w and N×L×D", sampleShape, textShape)
	}
	p, err := m.runner.Program(sampleShape, tensor.Shape{sampleShape[0]}, textShape)
	if err != nil {
		return 0, err
	}
	return p.BufferBytes(), nil
}

// program returns the Program for an input shape, compiling it if need be (for tests and
// benchmarks).
func (m *Model) program(sampleShape, textShape []int) *nn.Program {
	p, _ := m.runner.Program(sampleShape, tensor.Shape{sampleShape[0]}, textShape)
	return p
}

// compile builds the graph for the input shapes and compiles it for the output, or for the
// named taps ("out" is the output).
func (m *Model) compile(sampleShape, textShape []int, taps []string) (*nn.Program, error) {
	return m.compileLoRA(sampleShape, textShape, taps, nil)
}

// compileLoRA is compile with u's updates as further inputs after the model's three.
func (m *Model) compileLoRA(sampleShape, textShape []int, taps []string, u lora.Updates) (*nn.Program, error) {
	g, nodes, loraIn, err := m.buildLoRA(sampleShape, textShape, u)
	if err != nil {
		return nil, err
	}
	outs := []*gorgonia.Node{nodes["out"]}
	if taps != nil {
		outs = outs[:0]
		for _, name := range taps {
			n, ok := nodes[name]
			if !ok {
				return nil, fmt.Errorf("unet: no tap %q (see TapNames)", name)
			}
			outs = append(outs, n)
		}
	}
	prog, err := nn.Compile(g, append([]*gorgonia.Node{nodes["in.sample"], nodes["in.timestep"], nodes["in.text"]}, loraIn...), outs)
	if err != nil {
		return nil, fmt.Errorf("unet: %w", err)
	}
	return prog, nil
}

// build adds the whole forward to a new graph. The returned map holds every tap, the inputs
// ("in.sample", "in.timestep", "in.text") and the result ("out").
func (m *Model) build(sampleShape, textShape []int) (*gorgonia.ExprGraph, map[string]*gorgonia.Node, error) {
	g, nodes, _, err := m.buildLoRA(sampleShape, textShape, nil)
	return g, nodes, err
}

// buildLoRA is build with u's update inputs added first (returned in Run order); an update no
// layer takes is an error naming it.
func (m *Model) buildLoRA(sampleShape, textShape []int, u lora.Updates) (*gorgonia.ExprGraph, map[string]*gorgonia.Node, []*gorgonia.Node, error) {
	g := gorgonia.NewGraph()
	loraIn := nn.AddLoRAInputs(g, u)
	sample := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(sampleShape...), gorgonia.WithName("sample"))
	ts := gorgonia.NewTensor(g, tensor.Float32, 1, gorgonia.WithShape(sampleShape[0]), gorgonia.WithName("timestep"))
	text := gorgonia.NewTensor(g, tensor.Float32, 3, gorgonia.WithShape(textShape...), gorgonia.WithName("encoder_hidden_states"))
	tp := tapper{m: map[string]*gorgonia.Node{"in.sample": sample, "in.timestep": ts, "in.text": text}}
	out, err := m.forward(sample, ts, text, tp)
	if err != nil {
		return nil, nil, nil, err
	}
	if un := nn.UnusedLoRA(g, loraIn); len(un) > 0 {
		return nil, nil, nil, fmt.Errorf("unet: LoRA layers that match no layer of the UNet: %s", strings.Join(un, ", "))
	}
	tp.m["out"] = out
	return g, tp.m, loraIn, nil
}

// forward is UNet2DConditionModel.forward (the sample already centred when the config says so).
func (m *Model) forward(sample, timesteps, text *gorgonia.Node, tp tapper) (*gorgonia.Node, error) {
	// 1. time
	tEmb, err := m.timeProj.Forward(timesteps)
	if err != nil {
		return nil, err
	}
	tp.put("time_proj", tEmb)
	emb, err := m.timeEmbedding.Forward(tEmb)
	if err != nil {
		return nil, err
	}
	tp.put("time_embedding", emb)

	// 2. pre-process
	h, err := m.convIn.Forward(sample)
	if err != nil {
		return nil, err
	}
	tp.put("conv_in", h)

	// 3. down
	skips := []*gorgonia.Node{h}
	for i, b := range m.downBlocks {
		var res []*gorgonia.Node
		name := fmt.Sprintf("down_blocks.%d", i)
		if h, res, err = b.forward(h, emb, text, tp.sub(name)); err != nil {
			return nil, err
		}
		tp.put(name, h)
		skips = append(skips, res...)
	}

	// 4. mid
	if m.midBlock != nil {
		if h, err = m.midBlock.forward(h, emb, text, tp.sub("mid_block")); err != nil {
			return nil, err
		}
		tp.put("mid_block", h)
	}

	// 5. up: each block takes as many skip states as it has resnets. When the sample size is
	// not a multiple of 2^upsamplers the upsampler resizes to the next skip state's size
	// (diffusers' upsample_size); otherwise that size is exactly twice the input's.
	for i, b := range m.upBlocks {
		k := len(b.Resnets)
		res := skips[len(skips)-k:]
		skips = skips[:len(skips)-k]
		var size []int
		if b.Upsampler != nil && len(skips) > 0 {
			s := skips[len(skips)-1].Shape()
			hs := h.Shape()
			if s[2] != 2*hs[2] || s[3] != 2*hs[3] {
				size = []int{s[2], s[3]}
			}
		}
		name := fmt.Sprintf("up_blocks.%d", i)
		if h, err = b.forward(h, res, emb, text, size, tp.sub(name)); err != nil {
			return nil, err
		}
		tp.put(name, h)
	}

	// 6. post-process
	norm, err := m.convNormOut.Forward(h) // only for the tap; the fused op below is what runs
	if err != nil {
		return nil, err
	}
	tp.put("conv_norm_out", norm)
	if h, err = m.convNormOut.ForwardSiLU(h); err != nil {
		return nil, err
	}
	return m.convOut.Forward(h)
}

// contiguous returns t, or a dense copy of it when it is a view.
func contiguous(t *tensor.Dense) *tensor.Dense {
	if t.IsMaterializable() {
		return t.Materialize().(*tensor.Dense)
	}
	return t
}

// centered returns 2·x − 1 (center_input_sample) in a new tensor.
func centered(x *tensor.Dense) *tensor.Dense {
	src := x.Float32s()
	dst := make([]float32, len(src))
	for i, v := range src {
		dst[i] = 2*v - 1
	}
	return tensor.New(tensor.WithShape(x.Shape().Clone()...), tensor.WithBacking(dst))
}
