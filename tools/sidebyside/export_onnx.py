"""Exports one model to ONNX (fp32, fixed benchmark shapes) for ONNX Runtime.

    /usr/bin/python3 export_onnx.py --model unet|vae|clip --models DIR --inputs DIR --out FILE [--opset 17]

The UNet's 2.3 GB of weights exceed protobuf's 2 GB limit, so its weights go to an external
data file next to FILE (torch.onnx.export does that by itself for large models). Existing
files are overwritten.
"""

import argparse
import os

import numpy as np
import torch

import inputs as inputs_mod
import models


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, choices=sorted(models.MODELS))
    ap.add_argument("--models", required=True)
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--opset", type=int, default=17)
    a = ap.parse_args()
    torch.set_num_threads(2)
    m = models.load(a.model, a.models)
    feeds = inputs_mod.read(a.inputs, a.model)
    args = tuple(torch.from_numpy(v) for v in feeds.values())
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(m, args, a.out, input_names=list(feeds), output_names=["output"],
                          opset_version=a.opset, do_constant_folding=True)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
