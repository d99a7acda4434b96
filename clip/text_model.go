package clip

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

// positionIDs is the buffer older checkpoints carry; like transformers 4.33 the model ignores it.
const positionIDs = "text_model.embeddings.position_ids"

// ErrClosed is returned (wrapped) by every call on a closed TextModel; it is the same value as
// unet.ErrClosed, vae.ErrClosed and pipeline.ErrClosed.
var ErrClosed = nn.ErrClosed

// TextModel is transformers' CLIPTextModel: token ids → last hidden state. A graph is compiled
// per batch size and sequence length on first use and cached (in a byte-bounded cache, see
// SetCacheLimit); a TextModel is safe for concurrent use (calls with the same shape take
// turns), and Close waits for the calls in flight.
type TextModel struct {
	cfg   Config
	store *weights.Store // owned when built by Load

	Embeddings     *TextEmbeddings
	Layers         []*EncoderLayer
	FinalLayerNorm *nn.LayerNorm

	runner *nn.Runner
	lora   nn.LoRARunners // one runner per set of patched layers (EncodeLoRA)
}

// New builds the text encoder described by cfg from the weights under w (the text_encoder
// component's tensors, named as transformers names them: text_model.embeddings…,
// text_model.encoder.layers.N…, text_model.final_layer_norm…). Missing or mis-shaped tensors
// are errors naming them.
func New(cfg Config, w weights.View) (*TextModel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w = w.Sub("text_model")
	m := &TextModel{cfg: cfg}
	m.runner = nn.NewRunner("clip", func(shapes ...tensor.Shape) (*nn.Program, error) {
		return m.compile(shapes[0][0], shapes[0][1], nil)
	})
	var err error
	if m.Embeddings, err = newTextEmbeddings(w.Sub("embeddings"), cfg); err != nil {
		return nil, err
	}
	for i := 0; i < cfg.NumHiddenLayers; i++ {
		l, err := newEncoderLayer(w.Sub("encoder.layers").Sub(fmt.Sprint(i)), cfg.layerConfig())
		if err != nil {
			return nil, err
		}
		m.Layers = append(m.Layers, l)
	}
	if m.FinalLayerNorm, err = nn.NewLayerNorm(w.Sub("final_layer_norm"), cfg.HiddenSize, float32(cfg.LayerNormEps)); err != nil {
		return nil, err
	}
	return m, nil
}

// Load reads dir/config.json and the weights in dir (a diffusers text_encoder folder:
// safetensors or PyTorch .bin; weights.WithVariant("fp16") picks the half-precision files,
// widened to float32) and builds the model. Tensors in the file that the model does not use
// are an error (they mean the config does not describe the checkpoint), except the
// position_ids buffer. The weights file stays open until Close.
func Load(dir string, opts ...weights.Option) (*TextModel, error) {
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
		if err = s.CheckAllUsed(positionIDs); err != nil {
			err = fmt.Errorf("clip: %w", err)
		}
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	m.store = s
	// The Linear layers packed their weights at load into their own memory: the mapped pages
	// they read are not needed any more (the tensors still aliasing the mapping fault theirs
	// back in on first use).
	s.ReleasePages()
	return m, nil
}

// Config returns the model's configuration.
func (m *TextModel) Config() Config { return m.cfg }

// SetCacheLimit bounds the buffer memory of the compiled programs kept for reuse (one per batch
// size and length): the least recently used are dropped beyond bytes, the last used is always
// kept. The default is 1 GiB (nn.DefaultCacheLimit).
func (m *TextModel) SetCacheLimit(bytes int64) { m.runner.Cache().SetLimit(bytes) }

// Runner returns the runner the model's calls go through (for sharing a cache with other
// models, as the pipeline does).
func (m *TextModel) Runner() *nn.Runner { return m.runner }

// ReleaseWeightPages takes the pages of the weights file the TextModel mapped (when made by Load)
// out of the process's resident memory until it next reads them (weights.Store.ReleasePages):
// for a model that is idle for a while. It stays usable; its next call faults the pages back
// in. It returns the bytes advised, 0 when the weights are not a mapped file of its own.
func (m *TextModel) ReleaseWeightPages() int64 {
	if m.store == nil {
		return 0
	}
	return m.store.ReleasePages()
}

// ReleasePackedWeights drops the packed copies of the Linear weights that a TextModel made by
// Load keeps in its own memory (about 162 MB for SD 1.x's encoder with half weights), for a
// model that is idle for a while, as the pipeline's is during denoising: its next call packs
// them again from the mapped weights file (nn.ReleasePacked). It returns the bytes dropped, 0
// for a model not made by Load (its weights may not be there to read again).
func (m *TextModel) ReleasePackedWeights() int64 {
	if m.store == nil {
		return 0
	}
	var ls []*nn.Linear
	for _, l := range m.Layers {
		ls = append(append(ls, l.SelfAttn.Linears()...), l.MLP.FC1, l.MLP.FC2)
	}
	return nn.ReleasePacked(ls...)
}

// Close waits for the calls in flight (cancelling them: they return ErrClosed), then releases
// the compiled programs and the weights file of a model made by Load. Every later call returns
// ErrClosed; Close is idempotent.
func (m *TextModel) Close() error {
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

// Encode returns the last hidden state (B×L×hidden_size, a new tensor) of the token ids: B
// rows of the same length L, 1 ≤ L ≤ max_position_embeddings, each id in [0, vocab_size).
// The SD pipeline passes 77 ids per prompt, padded with the end-of-text id, and no attention
// mask (the causal mask still applies).
func (m *TextModel) Encode(ctx context.Context, ids [][]int) (*tensor.Dense, error) {
	outs, err := m.run(ctx, ids, nil, nil)
	if err != nil {
		return nil, err
	}
	return outs[0], nil
}

// EncodePooled returns the last hidden state like Encode and CLIPTextModel's pooled output
// (B×hidden_size): each row's hidden state at its first eos_token_id, or at its largest id
// when eos_token_id is 2 (transformers 4.33's rule for old configs). A row without the eos id
// gives position 0, as torch's argmax does.
func (m *TextModel) EncodePooled(ctx context.Context, ids [][]int) (last, pooled *tensor.Dense, err error) {
	if last, err = m.Encode(ctx, ids); err != nil {
		return nil, nil, err
	}
	l, d := len(ids[0]), m.cfg.HiddenSize
	src := last.Float32s()
	dst := make([]float32, len(ids)*d)
	for b, row := range ids {
		pos := 0
		for i, id := range row {
			if m.cfg.EosTokenID == 2 && id > row[pos] {
				pos = i
			} else if m.cfg.EosTokenID != 2 && id == m.cfg.EosTokenID {
				pos = i
				break
			}
		}
		copy(dst[b*d:(b+1)*d], src[(b*l+pos)*d:])
	}
	return last, tensor.New(tensor.WithShape(len(ids), d), tensor.WithBacking(dst)), nil
}

// ForwardTaps runs the model like Encode and returns the intermediate outputs named by taps,
// module paths under text_model.encoder as the reference recorded them: "embeddings",
// "layers.N" (the layer's output), and inside a layer "layers.N.layer_norm1",
// "layers.N.self_attn", "layers.N.layer_norm2", "layers.N.mlp" (the sub-module outputs, before
// their residual adds), and "final_layer_norm" (the last hidden state). Programs for taps are
// compiled per call, not cached.
func (m *TextModel) ForwardTaps(ctx context.Context, ids [][]int, taps []string) (map[string]*tensor.Dense, error) {
	if len(taps) == 0 {
		return nil, fmt.Errorf("clip: ForwardTaps: no taps named")
	}
	outs, err := m.run(ctx, ids, taps, nil)
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
func (m *TextModel) TapNames() ([]string, error) {
	_, nodes, err := m.build(1, 1)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(nodes))
	for k := range nodes {
		if k != "in.input_ids" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return names, nil
}

// checkIDs validates ids and returns them as a B×L float32 tensor.
func (m *TextModel) checkIDs(ids [][]int) (*tensor.Dense, error) {
	if len(ids) == 0 {
		return nil, fmt.Errorf("clip: Encode: no token ids")
	}
	l := len(ids[0])
	if l < 1 || l > m.cfg.MaxPositionEmbeddings {
		return nil, fmt.Errorf("clip: Encode: sequence of %d ids; want 1…%d (max_position_embeddings)", l, m.cfg.MaxPositionEmbeddings)
	}
	data := make([]float32, 0, len(ids)*l)
	for b, row := range ids {
		if len(row) != l {
			return nil, fmt.Errorf("clip: Encode: row %d has %d ids, row 0 has %d; rows must have the same length", b, len(row), l)
		}
		for i, id := range row {
			if id < 0 || id >= m.cfg.VocabSize {
				return nil, fmt.Errorf("clip: Encode: id %d at row %d, position %d is outside the vocabulary (vocab_size %d)", id, b, i, m.cfg.VocabSize)
			}
			data = append(data, float32(id))
		}
	}
	return tensor.New(tensor.WithShape(len(ids), l), tensor.WithBacking(data)), nil
}

// run validates the ids, gets (or compiles) the program and runs it. With taps, a fresh
// program computes the named nodes instead of the output. ups are low-rank updates (EncodeLoRA).
func (m *TextModel) run(ctx context.Context, ids [][]int, taps []string, ups lora.Updates) ([]*tensor.Dense, error) {
	x, err := m.checkIDs(ids)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	inputs := append([]*tensor.Dense{x}, nn.LoRAValues(ups)...)
	if taps == nil {
		if len(ups) > 0 {
			return m.runLoRA(ctx, ups, inputs)
		}
		return m.runner.Run(ctx, x)
	}
	var res []*tensor.Dense
	err = m.runner.Call(ctx, func(ctx context.Context) error {
		prog, err := m.compileLoRA(x.Shape()[0], x.Shape()[1], taps, ups)
		if err != nil {
			return err
		}
		outs, err := prog.Run(ctx, inputs...)
		if err != nil {
			return fmt.Errorf("clip: %w", err)
		}
		res = make([]*tensor.Dense, len(outs))
		for i, o := range outs {
			res[i] = nn.Clone(o)
		}
		return nil
	})
	return res, err
}

// program returns the Program for a batch size and length, compiling it if need be (for
// benchmarks).
func (m *TextModel) program(b, l int) *nn.Program {
	p, _ := m.runner.Program(tensor.Shape{b, l})
	return p
}

// compile builds the graph for b×l ids and compiles it for the output, or for the named taps.
func (m *TextModel) compile(b, l int, taps []string) (*nn.Program, error) {
	return m.compileLoRA(b, l, taps, nil)
}

// compileLoRA is compile with u's updates as further inputs after the ids.
func (m *TextModel) compileLoRA(b, l int, taps []string, u lora.Updates) (*nn.Program, error) {
	g, nodes, loraIn, err := m.buildLoRA(b, l, u)
	if err != nil {
		return nil, err
	}
	outs := []*gorgonia.Node{nodes["final_layer_norm"]}
	if taps != nil {
		outs = outs[:0]
		for _, name := range taps {
			n, ok := nodes[name]
			if !ok || name == "in.input_ids" {
				return nil, fmt.Errorf("clip: no tap %q (see TapNames)", name)
			}
			outs = append(outs, n)
		}
	}
	prog, err := nn.Compile(g, append([]*gorgonia.Node{nodes["in.input_ids"]}, loraIn...), outs)
	if err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	return prog, nil
}

// build adds the whole forward for b×l ids to a new graph. The returned map holds every tap,
// the input ("in.input_ids") and the result ("final_layer_norm").
func (m *TextModel) build(b, l int) (*gorgonia.ExprGraph, map[string]*gorgonia.Node, error) {
	g, nodes, _, err := m.buildLoRA(b, l, nil)
	return g, nodes, err
}

// buildLoRA is build with u's update inputs added first (returned in Run order); an update no
// layer takes is an error naming it.
func (m *TextModel) buildLoRA(b, l int, u lora.Updates) (*gorgonia.ExprGraph, map[string]*gorgonia.Node, []*gorgonia.Node, error) {
	g := gorgonia.NewGraph()
	loraIn := nn.AddLoRAInputs(g, u)
	ids := gorgonia.NewTensor(g, tensor.Float32, 2, gorgonia.WithShape(b, l), gorgonia.WithName("input_ids"))
	tp := tapper{m: map[string]*gorgonia.Node{"in.input_ids": ids}}
	out, err := m.forward(ids, tp)
	if err != nil {
		return nil, nil, nil, err
	}
	if un := nn.UnusedLoRA(g, loraIn); len(un) > 0 {
		return nil, nil, nil, fmt.Errorf("clip: LoRA layers that match no layer of the text encoder: %s", strings.Join(un, ", "))
	}
	tp.put("final_layer_norm", out)
	return g, tp.m, loraIn, nil
}
