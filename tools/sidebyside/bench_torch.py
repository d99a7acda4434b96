"""Times one model in PyTorch: a warm-up run, then --runs timed runs; prints one JSON line.

    /usr/bin/python3 bench_torch.py --model unet|vae|clip --dtype fp32|bf16 \
        --models DIR --inputs DIR [--runs 3] [--threads 2] [--save-output FILE]

The model is built in the target dtype and filled tensor by tensor (models.build), as
model.to(torch.bfloat16) would leave it, without ever holding an fp32 copy; inputs are cast to
the model's dtype (ids stay int64, the timestep fp32). --save-output writes the output as float32 raw data (the
ONNX Runtime run compares with it).
"""

import argparse
import json
import statistics
import time

import numpy as np
import torch

import inputs as inputs_mod
import models


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, choices=sorted(models.MODELS))
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--models", required=True)
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--save-output")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[a.dtype]
    t0 = time.perf_counter()
    m = models.load(a.model, a.models, dtype)
    load_s = time.perf_counter() - t0
    # Activations in the model's dtype; the timestep stays fp32 (diffusers takes it from the
    # scheduler, and 981 is not a bf16 number).
    feeds = [torch.from_numpy(v).to(dtype) if k != "timestep" and v.dtype == np.float32 else torch.from_numpy(v)
             for k, v in inputs_mod.read(a.inputs, a.model).items()]
    times = []
    with torch.inference_mode():
        out = m(*feeds)  # warm-up
        for _ in range(a.runs):
            t = time.perf_counter()
            out = m(*feeds)
            times.append(time.perf_counter() - t)
    if a.save_output:
        out.float().numpy().astype(np.float32).tofile(a.save_output)
    print(json.dumps({"system": f"pytorch-{a.dtype}", "model": a.model, "threads": torch.get_num_threads(),
                      "torch": torch.__version__, "load_s": round(load_s, 2), "times": times,
                      "median": statistics.median(times)}))


if __name__ == "__main__":
    main()
