"""Checks that models.py computes the same models as diffusers/transformers and smallsd: runs
each on the inputs of testdata/fullsize-golden.safetensors (the diffusers 0.21.4 /
transformers 4.33 outputs of these very synthetic weights) and prints the errors, as one JSON
line per model and dtype:

    /usr/bin/python3 verify.py MODELS_DIR GOLDEN [--dtype fp32,bf16] [--threads 2]

max_rel is max|got − ref| / max|ref|; rel_rms is ‖got − ref‖₂ / ‖ref‖₂ (as smallsd's tests
report). Exits non-zero when an fp32 error is above 1e-3 (relative RMS).
"""

import argparse
import json
import sys

import numpy as np
import torch

import models


def errors(got, ref):
    got = got.detach().float().numpy().astype(np.float64)
    ref = ref.astype(np.float64)
    d = got - ref
    return {"max_rel": float(np.abs(d).max() / np.abs(ref).max()),
            "rel_rms": float(np.sqrt((d * d).sum() / (ref * ref).sum()))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models_dir")
    ap.add_argument("golden")
    ap.add_argument("--dtype", default="fp32,bf16")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    g = lambda name: models.read_tensor(a.golden, name)  # noqa: E731
    bad = False
    for dt in a.dtype.split(","):
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dt]
        for name in ("clip", "unet", "vae"):
            m = models.load(name, a.models_dir, dtype)
            taps = {}
            with torch.inference_mode():
                if name == "clip":
                    out = m(torch.from_numpy(g("clip.input_ids").astype(np.int64)))
                    res = {"output": errors(out, g("clip.last_hidden_state"))}
                elif name == "unet":
                    x = torch.from_numpy(g("unet.sample")).to(dtype)
                    ctx = torch.from_numpy(g("unet.encoder_hidden_states")).to(dtype)
                    t = torch.tensor([981.0, 981.0])
                    out = m(x, t, ctx, taps=taps)
                    res = {"output": errors(out, g("unet.out_t981"))}
                    header, _ = models.read_safetensors_header(a.golden)
                    for k in sorted(taps):
                        if "unet.tap." + k in header:
                            res["tap." + k] = errors(taps[k], g("unet.tap." + k))
                else:
                    out = m(torch.from_numpy(g("vae.latents")).to(dtype))
                    res = {"output": errors(out, g("vae.decoded"))}
            del m
            rec = {"model": name, "dtype": dt, "shape": list(out.shape), **res}
            print(json.dumps(rec), flush=True)
            if dt == "fp32" and res["output"]["rel_rms"] > 1e-3:
                bad = True
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
