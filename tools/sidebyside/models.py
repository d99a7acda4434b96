"""Plain-PyTorch versions of the three full-size models smallsd runs, for timing them side by side.

They follow diffusers 0.21.4 (UNet2DConditionModel, AutoencoderKL's decoder) and transformers 4.33
(CLIPTextModel) operation for operation, with the same parameter names, so that the safetensors
files written by tools/sidebyside/export load with strict name and shape checks. diffusers is not
packaged for Debian; only torch (1.13) and numpy are needed. verify.py checks the outputs against
the diffusers reference tensors in testdata/fullsize-golden.safetensors.

Everything is driven by the models' config.json files; nothing about the small-sd layout is
hard-coded.
"""

import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------------------------------------
# safetensors


def read_safetensors_header(path):
    """Returns (header dict without __metadata__, offset of the data section)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return header, 8 + n


_NP_DTYPES = {"F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "F64": "<f8"}


def read_tensor(path, name):
    """Reads one tensor of a safetensors file as a numpy array (BF16 is widened to float32)."""
    header, base = read_safetensors_header(path)
    return _read(path, header, base, name)


def _read(path, header, base, name):
    e = header[name]
    lo, hi = e["data_offsets"]
    if e["dtype"] == "BF16":
        raw = np.fromfile(path, dtype="<u2", count=(hi - lo) // 2, offset=base + lo)
        return (raw.astype(np.uint32) << 16).view(np.float32).reshape(e["shape"])
    dt = np.dtype(_NP_DTYPES[e["dtype"]])
    a = np.fromfile(path, dtype=dt, count=(hi - lo) // dt.itemsize, offset=base + lo)
    return a.reshape(e["shape"])


def load_into(model, path):
    """Copies every tensor of the safetensors file at path into model's parameters, one tensor at
    a time (so at most one tensor is held twice), converting to the parameters' dtype. Names and
    shapes must match exactly, both ways."""
    header, base = read_safetensors_header(path)
    params = dict(model.named_parameters())
    missing = sorted(set(params) - set(header))
    unexpected = sorted(set(header) - set(params))
    if missing or unexpected:
        raise ValueError(f"{path}: missing {missing[:5]} ({len(missing)}), "
                         f"unexpected {unexpected[:5]} ({len(unexpected)})")
    with torch.no_grad():
        for name, p in params.items():
            a = _read(path, header, base, name)
            if list(a.shape) != list(p.shape):
                raise ValueError(f"{path}: {name} has shape {list(a.shape)}, model wants {list(p.shape)}")
            p.copy_(torch.from_numpy(a))
            del a


def build(cls, model_dir, weight_file, dtype=torch.float32):
    """Builds cls(config) without initialising it (on the meta device, then allocated empty in
    dtype), and loads the weights: peak memory is the model in dtype plus one tensor."""
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    with torch.device("meta") if hasattr(torch.device, "__enter__") else _Meta():
        model = cls(config)
    model = model.to(dtype).to_empty(device="cpu")
    load_into(model, os.path.join(model_dir, weight_file))
    return model.eval()


class _Meta:
    """torch 1.13 has no `with torch.device(...)`: builds modules on the meta device by patching
    the parameter-making layers' defaults for the duration."""

    _layers = (nn.Linear, nn.Conv2d, nn.GroupNorm, nn.LayerNorm, nn.Embedding)

    def __enter__(self):
        self._saved = [c.__init__ for c in self._layers]
        for c, init in zip(self._layers, self._saved):
            def patched(self_, *a, _init=init, **k):
                k.setdefault("device", "meta")
                _init(self_, *a, **k)
            c.__init__ = patched

    def __exit__(self, *exc):
        for c, init in zip(self._layers, self._saved):
            c.__init__ = init


# ---------------------------------------------------------------------------------------------
# shared blocks (diffusers 0.21.4)


def attention(q, k, v, heads, upcast_softmax=False):
    """Multi-head attention on (batch, seq, heads*dim) tensors, the way diffusers' AttnProcessor
    computes it on torch 1.x: scores = q·kᵀ·scale, softmax, ·v."""
    b, n, inner = q.shape
    d = inner // heads

    def split(x):
        return x.reshape(b, x.shape[1], heads, d).permute(0, 2, 1, 3).reshape(b * heads, x.shape[1], d)

    q, k, v = split(q), split(k), split(v)
    scores = torch.bmm(q, k.transpose(-1, -2)) * (d ** -0.5)
    if upcast_softmax:
        probs = scores.float().softmax(dim=-1).to(v.dtype)
    else:
        probs = scores.softmax(dim=-1)
    out = torch.bmm(probs, v)
    return out.reshape(b, heads, n, d).permute(0, 2, 1, 3).reshape(b, n, inner)


class Attention(nn.Module):
    """diffusers.models.attention_processor.Attention for the UNet (no q/k/v bias) and the VAE
    mid block (biases, group norm, residual, softmax in fp32)."""

    def __init__(self, query_dim, heads, dim_head, cross_attention_dim=None, bias=False,
                 norm_groups=None, norm_eps=1e-6, residual=False, upcast_softmax=False):
        super().__init__()
        inner = heads * dim_head
        kv_dim = cross_attention_dim or query_dim
        self.heads = heads
        self.residual = residual
        self.upcast_softmax = upcast_softmax
        self.group_norm = nn.GroupNorm(norm_groups, query_dim, eps=norm_eps) if norm_groups else None
        self.to_q = nn.Linear(query_dim, inner, bias=bias)
        self.to_k = nn.Linear(kv_dim, inner, bias=bias)
        self.to_v = nn.Linear(kv_dim, inner, bias=bias)
        self.to_out = nn.ModuleList([nn.Linear(inner, query_dim)])

    def forward(self, x, context=None):
        res = x
        shape4 = None
        if x.dim() == 4:
            shape4 = x.shape
            b, c, h, w = x.shape
            x = x.view(b, c, h * w).transpose(1, 2)
        if self.group_norm is not None:
            x = self.group_norm(x.transpose(1, 2)).transpose(1, 2)
        ctx = x if context is None else context
        out = attention(self.to_q(x), self.to_k(ctx), self.to_v(ctx), self.heads, self.upcast_softmax)
        out = self.to_out[0](out)
        if shape4 is not None:
            out = out.transpose(-1, -2).reshape(shape4)
        return out + res if self.residual else out


class ResnetBlock2D(nn.Module):
    def __init__(self, cin, cout, temb_channels, groups, eps):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=eps)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb_channels, cout) if temb_channels else None
        self.norm2 = nn.GroupNorm(groups, cout, eps=eps)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb=None):
        h = self.conv1(F.silu(self.norm1(x)))
        if self.time_emb_proj is not None:
            h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        if self.conv_shortcut is not None:
            x = self.conv_shortcut(x)
        return x + h


class Downsample2D(nn.Module):
    def __init__(self, c, padding):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=padding)

    def forward(self, x):
        return self.conv(x)


class Upsample2D(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        dtype = x.dtype
        if dtype == torch.bfloat16:  # as diffusers does: nearest upsampling in fp32 for bf16
            x = x.float()
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.conv(x.to(dtype))


# ---------------------------------------------------------------------------------------------
# UNet2DConditionModel


class GEGLU(nn.Module):
    def __init__(self, dim, inner):
        super().__init__()
        self.proj = nn.Linear(dim, inner * 2)

    def forward(self, x):
        h, gate = self.proj(x).chunk(2, dim=-1)
        return h * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim):
        super().__init__()
        # net.0 GEGLU, net.1 dropout (no parameters), net.2 the output projection
        self.net = nn.ModuleList([GEGLU(dim, dim * 4), nn.Dropout(0.0), nn.Linear(dim * 4, dim)])

    def forward(self, x):
        for m in self.net:
            x = m(x)
        return x


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim, heads, dim_head, cross_dim):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, heads, dim_head)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = Attention(dim, heads, dim_head, cross_attention_dim=cross_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim)

    def forward(self, x, context):
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x), context) + x
        return self.ff(self.norm3(x)) + x


class Transformer2DModel(nn.Module):
    def __init__(self, heads, dim_head, channels, groups, cross_dim, layers=1):
        super().__init__()
        inner = heads * dim_head
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.proj_in = nn.Conv2d(channels, inner, 1)
        self.transformer_blocks = nn.ModuleList(
            [BasicTransformerBlock(inner, heads, dim_head, cross_dim) for _ in range(layers)])
        self.proj_out = nn.Conv2d(inner, channels, 1)

    def forward(self, x, context):
        b, _, h, w = x.shape
        res = x
        x = self.proj_in(self.norm(x))
        inner = x.shape[1]
        x = x.permute(0, 2, 3, 1).reshape(b, h * w, inner)
        for blk in self.transformer_blocks:
            x = blk(x, context)
        x = x.reshape(b, h, w, inner).permute(0, 3, 1, 2).contiguous()
        return self.proj_out(x) + res


class DownBlock(nn.Module):
    """CrossAttnDownBlock2D (cross=True) or DownBlock2D."""

    def __init__(self, cin, cout, temb, layers, groups, eps, cross, heads, cross_dim, downsample, pad):
        super().__init__()
        self.resnets = nn.ModuleList(
            [ResnetBlock2D(cin if i == 0 else cout, cout, temb, groups, eps) for i in range(layers)])
        self.attentions = nn.ModuleList(
            [Transformer2DModel(heads, cout // heads, cout, groups, cross_dim) for _ in range(layers)]
        ) if cross else None
        self.downsamplers = nn.ModuleList([Downsample2D(cout, pad)]) if downsample else None

    def forward(self, x, temb, context):
        outs = ()
        for i, r in enumerate(self.resnets):
            x = r(x, temb)
            if self.attentions is not None:
                x = self.attentions[i](x, context)
            outs += (x,)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
            outs += (x,)
        return x, outs


class UpBlock(nn.Module):
    """CrossAttnUpBlock2D (cross=True) or UpBlock2D."""

    def __init__(self, cin, cprev, cout, temb, layers, groups, eps, cross, heads, cross_dim, upsample):
        super().__init__()
        rs = []
        for i in range(layers):
            skip = cin if i == layers - 1 else cout
            rin = cprev if i == 0 else cout
            rs.append(ResnetBlock2D(rin + skip, cout, temb, groups, eps))
        self.resnets = nn.ModuleList(rs)
        self.attentions = nn.ModuleList(
            [Transformer2DModel(heads, cout // heads, cout, groups, cross_dim) for _ in range(layers)]
        ) if cross else None
        self.upsamplers = nn.ModuleList([Upsample2D(cout)]) if upsample else None

    def forward(self, x, skips, temb, context):
        for i, r in enumerate(self.resnets):
            x = torch.cat([x, skips[-1]], dim=1)
            skips = skips[:-1]
            x = r(x, temb)
            if self.attentions is not None:
                x = self.attentions[i](x, context)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x)
        return x


class MidBlock2DCrossAttn(nn.Module):
    def __init__(self, c, temb, groups, eps, heads, cross_dim):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(c, c, temb, groups, eps) for _ in range(2)])
        self.attentions = nn.ModuleList([Transformer2DModel(heads, c // heads, c, groups, cross_dim)])

    def forward(self, x, temb, context):
        x = self.resnets[0](x, temb)
        return self.resnets[1](self.attentions[0](x, context), temb)


class TimestepEmbedding(nn.Module):
    def __init__(self, cin, dim):
        super().__init__()
        self.linear_1 = nn.Linear(cin, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x):
        return self.linear_2(F.silu(self.linear_1(x)))


def _per_block(v, n):
    return list(v) if isinstance(v, (list, tuple)) else [v] * n


class UNet2DConditionModel(nn.Module):
    """UNet2DConditionModel with the options SD 1.x-style configs use (checked, not assumed)."""

    def __init__(self, cfg):
        super().__init__()
        for key, want in (("center_input_sample", False), ("use_linear_projection", False),
                          ("class_embed_type", None), ("addition_embed_type", None),
                          ("upcast_attention", False), ("only_cross_attention", False),
                          ("resnet_time_scale_shift", "default"), ("act_fn", "silu"),
                          ("mid_block_scale_factor", 1), ("transformer_layers_per_block", 1)):
            if cfg.get(key, want) != want:
                raise ValueError(f"unet config: {key}={cfg[key]!r} not supported (want {want!r})")
        if cfg.get("mid_block_type", "UNetMidBlock2DCrossAttn") not in ("UNetMidBlock2DCrossAttn", None):
            raise ValueError(f"unet config: mid_block_type={cfg['mid_block_type']!r} not supported")
        chans = cfg["block_out_channels"]
        n = len(chans)
        groups, eps = cfg["norm_num_groups"], cfg["norm_eps"]
        layers = _per_block(cfg["layers_per_block"], n)
        # diffusers' SD 1.x naming quirk: attention_head_dim is the number of heads.
        heads = _per_block(cfg.get("num_attention_heads") or cfg["attention_head_dim"], n)
        cross_dim = cfg["cross_attention_dim"]
        temb = chans[0] * 4
        self.time_channels = chans[0]
        self.flip_sin_to_cos = cfg["flip_sin_to_cos"]
        self.freq_shift = cfg["freq_shift"]

        self.conv_in = nn.Conv2d(cfg["in_channels"], chans[0], 3, padding=1)
        self.time_embedding = TimestepEmbedding(chans[0], temb)
        down = []
        cout = chans[0]
        for i, kind in enumerate(cfg["down_block_types"]):
            cin, cout = cout, chans[i]
            if kind not in ("CrossAttnDownBlock2D", "DownBlock2D"):
                raise ValueError(f"unet config: down block type {kind!r} not supported")
            down.append(DownBlock(cin, cout, temb, layers[i], groups, eps, kind.startswith("CrossAttn"),
                                  heads[i], cross_dim, i < n - 1, cfg["downsample_padding"]))
        self.down_blocks = nn.ModuleList(down)
        self.mid_block = (MidBlock2DCrossAttn(chans[-1], temb, groups, eps, heads[-1], cross_dim)
                          if cfg.get("mid_block_type", "UNetMidBlock2DCrossAttn") else None)
        up = []
        rchans, rheads, rlayers = chans[::-1], heads[::-1], layers[::-1]
        cout = rchans[0]
        for i, kind in enumerate(cfg["up_block_types"]):
            cprev, cout = cout, rchans[i]
            cin = rchans[min(i + 1, n - 1)]
            if kind not in ("CrossAttnUpBlock2D", "UpBlock2D"):
                raise ValueError(f"unet config: up block type {kind!r} not supported")
            up.append(UpBlock(cin, cprev, cout, temb, rlayers[i] + 1, groups, eps,
                              kind.startswith("CrossAttn"), rheads[i], cross_dim, i < n - 1))
        self.up_blocks = nn.ModuleList(up)
        self.conv_norm_out = nn.GroupNorm(groups, chans[0], eps=eps)
        self.conv_out = nn.Conv2d(chans[0], cfg["out_channels"], 3, padding=1)

    def time_proj(self, t):
        half = self.time_channels // 2
        exponent = -math.log(10000) * torch.arange(half, dtype=torch.float32) / (half - self.freq_shift)
        emb = t[:, None].float() * torch.exp(exponent)[None, :]
        emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=-1)
        if self.flip_sin_to_cos:
            emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
        return emb

    def forward(self, sample, timestep, encoder_hidden_states, taps=None):
        """sample (B,4,H,W), timestep (B,), encoder_hidden_states (B,77,768). taps, a dict, gets
        the block outputs the reference file holds."""
        emb = self.time_embedding(self.time_proj(timestep).to(sample.dtype))
        if taps is not None:
            taps["time_embedding"] = emb
        x = self.conv_in(sample)
        skips = (x,)
        for i, blk in enumerate(self.down_blocks):
            x, res = blk(x, emb, encoder_hidden_states)
            skips += res
            if taps is not None:
                taps[f"down_blocks.{i}"] = x
        if self.mid_block is not None:
            x = self.mid_block(x, emb, encoder_hidden_states)
            if taps is not None:
                taps["mid_block"] = x
        for i, blk in enumerate(self.up_blocks):
            k = len(blk.resnets)
            x = blk(x, skips[-k:], emb, encoder_hidden_states)
            skips = skips[:-k]
            if taps is not None:
                taps[f"up_blocks.{i}"] = x
        return self.conv_out(F.silu(self.conv_norm_out(x)))


# ---------------------------------------------------------------------------------------------
# AutoencoderKL decoder


class MidBlock2D(nn.Module):
    def __init__(self, c, groups, eps):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(c, c, None, groups, eps) for _ in range(2)])
        # diffusers: attention_head_dim = in_channels, so one head of width c
        self.attentions = nn.ModuleList([Attention(c, 1, c, bias=True, norm_groups=groups, norm_eps=eps,
                                                   residual=True, upcast_softmax=True)])

    def forward(self, x):
        return self.resnets[1](self.attentions[0](self.resnets[0](x)))


class UpDecoderBlock2D(nn.Module):
    def __init__(self, cin, cout, layers, groups, eps, upsample):
        super().__init__()
        self.resnets = nn.ModuleList(
            [ResnetBlock2D(cin if i == 0 else cout, cout, None, groups, eps) for i in range(layers)])
        self.upsamplers = nn.ModuleList([Upsample2D(cout)]) if upsample else None

    def forward(self, x):
        for r in self.resnets:
            x = r(x)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x)
        return x


class Decoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        chans = cfg["block_out_channels"]
        groups, eps = cfg["norm_num_groups"], 1e-6  # diffusers' Decoder fixes eps at 1e-6
        self.conv_in = nn.Conv2d(cfg["latent_channels"], chans[-1], 3, padding=1)
        self.mid_block = MidBlock2D(chans[-1], groups, eps)
        rchans = chans[::-1]
        up = []
        cout = rchans[0]
        for i, kind in enumerate(cfg["up_block_types"]):
            if kind != "UpDecoderBlock2D":
                raise ValueError(f"vae config: up block type {kind!r} not supported")
            cin, cout = cout, rchans[i]
            up.append(UpDecoderBlock2D(cin, cout, cfg["layers_per_block"] + 1, groups, eps, i < len(chans) - 1))
        self.up_blocks = nn.ModuleList(up)
        self.conv_norm_out = nn.GroupNorm(groups, chans[0], eps=eps)
        self.conv_out = nn.Conv2d(chans[0], cfg["out_channels"], 3, padding=1)

    def forward(self, z):
        x = self.mid_block(self.conv_in(z))
        for blk in self.up_blocks:
            x = blk(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class VAEDecoder(nn.Module):
    """AutoencoderKL.decode: post_quant_conv, then the decoder (latents not scaled)."""

    def __init__(self, cfg):
        super().__init__()
        if cfg.get("act_fn", "silu") != "silu":
            raise ValueError(f"vae config: act_fn={cfg['act_fn']!r} not supported")
        lc = cfg["latent_channels"]
        self.post_quant_conv = nn.Conv2d(lc, lc, 1)
        self.decoder = Decoder(cfg)

    def forward(self, z):
        return self.decoder(self.post_quant_conv(z))


# ---------------------------------------------------------------------------------------------
# CLIPTextModel (transformers 4.33)


class CLIPAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x, mask):
        b, n, dim = x.shape
        h, d = self.heads, dim // self.heads

        def split(t):
            return t.reshape(b, n, h, d).transpose(1, 2).reshape(b * h, n, d)

        q = split(self.q_proj(x) * (d ** -0.5))
        k, v = split(self.k_proj(x)), split(self.v_proj(x))
        w = torch.bmm(q, k.transpose(1, 2)).view(b, h, n, n) + mask
        w = w.view(b * h, n, n).softmax(dim=-1)
        out = torch.bmm(w, v).view(b, h, n, d).transpose(1, 2).reshape(b, n, dim)
        return self.out_proj(out)


class CLIPMLP(nn.Module):
    def __init__(self, dim, inner, act):
        super().__init__()
        if act != "quick_gelu":
            raise ValueError(f"text_encoder config: hidden_act={act!r} not supported")
        self.fc1 = nn.Linear(dim, inner)
        self.fc2 = nn.Linear(inner, dim)

    def forward(self, x):
        x = self.fc1(x)
        return self.fc2(x * torch.sigmoid(1.702 * x))


class CLIPEncoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        dim, eps = cfg["hidden_size"], cfg["layer_norm_eps"]
        self.self_attn = CLIPAttention(dim, cfg["num_attention_heads"])
        self.layer_norm1 = nn.LayerNorm(dim, eps=eps)
        self.mlp = CLIPMLP(dim, cfg["intermediate_size"], cfg["hidden_act"])
        self.layer_norm2 = nn.LayerNorm(dim, eps=eps)

    def forward(self, x, mask):
        x = x + self.self_attn(self.layer_norm1(x), mask)
        return x + self.mlp(self.layer_norm2(x))


class _Embeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.token_embedding = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.position_embedding = nn.Embedding(cfg["max_position_embeddings"], cfg["hidden_size"])


class _Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layers = nn.ModuleList([CLIPEncoderLayer(cfg) for _ in range(cfg["num_hidden_layers"])])


class _TextTransformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embeddings = _Embeddings(cfg)
        self.encoder = _Encoder(cfg)
        self.final_layer_norm = nn.LayerNorm(cfg["hidden_size"], eps=cfg["layer_norm_eps"])


class CLIPTextModel(nn.Module):
    """input_ids (B, n) int64 → last_hidden_state (B, n, hidden), with the causal mask and no
    padding mask, as Stable Diffusion pipelines call it."""

    def __init__(self, cfg):
        super().__init__()
        self.text_model = _TextTransformer(cfg)

    def forward(self, input_ids):
        tm = self.text_model
        n = input_ids.shape[1]
        pos = torch.arange(n, dtype=torch.long)[None, :]
        x = tm.embeddings.token_embedding(input_ids) + tm.embeddings.position_embedding(pos)
        mask = torch.full((n, n), torch.finfo(x.dtype).min, dtype=x.dtype).triu(1)[None, None]
        for layer in tm.encoder.layers:
            x = layer(x, mask)
        return tm.final_layer_norm(x)


# ---------------------------------------------------------------------------------------------
# the three models as the benchmarks use them

MODELS = {
    # name: (class, folder under the export's output, weight file)
    "unet": (UNet2DConditionModel, "unet", "diffusion_pytorch_model.safetensors"),
    "vae": (VAEDecoder, "vae_decoder", "diffusion_pytorch_model.safetensors"),
    "clip": (CLIPTextModel, "text_encoder", "model.safetensors"),
}


def load(name, models_dir, dtype=torch.float32):
    cls, sub, wf = MODELS[name]
    return build(cls, os.path.join(models_dir, sub), wf, dtype)
