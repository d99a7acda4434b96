"""Writes the benchmark inputs every system reads, as raw little-endian files plus inputs.json.

    /usr/bin/python3 inputs.py GOLDEN OUTDIR

GOLDEN is testdata/fullsize-golden.safetensors: the text encoder's ids (2×77) and the UNet's
encoder hidden states (2×77×768) come from it; the UNet sample (2×4×64×64) and the VAE latents
(1×4×64×64) are seeded normal draws. Timestep 981, as in the reference.
"""

import json
import os
import sys

import numpy as np

import models


def main():
    golden, out = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(20)
    inputs = {
        "unet": {
            "sample": rng.standard_normal((2, 4, 64, 64), dtype=np.float32),
            "timestep": np.array([981, 981], dtype=np.float32),
            "encoder_hidden_states": models.read_tensor(golden, "unet.encoder_hidden_states").astype(np.float32),
        },
        "vae": {"latents": rng.standard_normal((1, 4, 64, 64), dtype=np.float32)},
        "clip": {"input_ids": models.read_tensor(golden, "clip.input_ids").astype(np.int64)},
    }
    index = {}
    for model, feeds in inputs.items():
        os.makedirs(os.path.join(out, model), exist_ok=True)
        index[model] = []
        for name, a in feeds.items():
            a = np.ascontiguousarray(a)
            a.tofile(os.path.join(out, model, name + ".bin"))
            index[model].append({"name": name, "dtype": str(a.dtype), "shape": list(a.shape)})
    with open(os.path.join(out, "inputs.json"), "w") as f:
        json.dump(index, f, indent=1)


def read(inputs_dir, model):
    """Returns the inputs of model as an ordered dict name → numpy array."""
    with open(os.path.join(inputs_dir, "inputs.json")) as f:
        index = json.load(f)
    return {e["name"]: np.fromfile(os.path.join(inputs_dir, model, e["name"] + ".bin"),
                                   dtype=e["dtype"]).reshape(e["shape"]) for e in index[model]}


if __name__ == "__main__":
    main()
