"""Prints the side-by-side table from run.sh's results folder (one markdown table, then the
verification errors and the conditions).

    /usr/bin/python3 table.py RESULTS_DIR [OUTPUTS_DIR]

With OUTPUTS_DIR (run.sh's $SCRATCH/out: each system's output on the benchmark inputs as raw
float32) it also prints how far ONNX Runtime fp32 and PyTorch bf16 are from PyTorch fp32.
"""

import glob
import json
import os
import re
import statistics
import sys

import numpy as np

SYSTEMS = [
    ("smallsd-fp32", "smallsd fp32"),
    ("smallsd-bf16", "smallsd bf16"),
    ("onnxruntime-fp32", "ONNX Runtime 1.30 fp32"),
    ("pytorch-fp32", "PyTorch 1.13 fp32"),
    ("pytorch-bf16", "PyTorch 1.13 bf16"),
]
MODELS = [
    ("unet", "small-sd UNet, batch 2, 64×64 latents, 77×768 text"),
    ("vae", "VAE decode 1×4×64×64 → 512×512"),
    ("clip", "CLIP ViT-L/14 text, 2×77"),
]


def peak_rss_gb(path):
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    s = re.search(r"Exit status: (\d+)", text)
    if s and s.group(1) != "0":
        return "failed"
    return int(m.group(1)) * 1024 / 1e9 if m else None


def median_seconds(path):
    """The median seconds per run: from a JSON line (pytorch, onnxruntime) or from go test
    benchmark lines (smallsd; the median of the -count runs' ns/op)."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None, None
    for line in text.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            return rec["median"], rec
    ns = [float(m.group(1)) for m in re.finditer(r"^Benchmark\S+\s+\d+\s+([\d.]+) ns/op", text, re.M)]
    return (statistics.median(ns) / 1e9, {"times": [x / 1e9 for x in ns]}) if ns else (None, None)


def fmt_s(s):
    return f"{s:.3f} s" if s < 1 else f"{s:.2f} s"


def main():
    res = sys.argv[1]
    head = "| | " + " | ".join(label for _, label in SYSTEMS) + " |"
    print(head)
    print("| --- " * (len(SYSTEMS) + 1) + "|")
    notes = []
    for model, mlabel in MODELS:
        cells = []
        for sysname, _ in SYSTEMS:
            base = os.path.join(res, f"{sysname}.{model}")
            sec, rec = median_seconds(base + ".json")
            rss = peak_rss_gb(base + ".time")
            if rss == "failed":
                cells.append("failed")
            elif sec is None:
                cells.append("—")
            else:
                fastest = min(rec["times"])
                cells.append(f"{fmt_s(sec)} ({fmt_s(fastest)[:-2]})" + (f", {rss:.2f} GB" if rss else ""))
        print(f"| {mlabel} | " + " | ".join(cells) + " |")
    print()
    print("Seconds: median (fastest) of the timed runs after a warm-up; GB: the process's peak RSS "
          "(/usr/bin/time -v: weights, activations and runtime).")
    vpath = os.path.join(res, "verify.jsonl")
    if os.path.exists(vpath):
        print()
        print("Same models: PyTorch (tools/sidebyside/models.py) against the diffusers 0.21.4 / "
              "transformers 4.33 outputs in testdata/fullsize-golden.safetensors:")
        with open(vpath) as f:
            for line in f:
                r = json.loads(line)
                o = r["output"]
                print(f"- {r['model']} {r['dtype']} {r['shape']}: rel RMS {o['rel_rms']:.2e}, "
                      f"max rel {o['max_rel']:.2e}")
    if len(sys.argv) > 2:
        ref_name = "pytorch-fp32"
        for model, _ in MODELS:
            ref = os.path.join(sys.argv[2], f"{model}.{ref_name}.bin")
            if not os.path.exists(ref):
                continue
            r = np.fromfile(ref, dtype="<f4").astype(np.float64)
            for other in ("onnxruntime-fp32", "pytorch-bf16"):
                p = os.path.join(sys.argv[2], f"{model}.{other}.bin")
                if os.path.exists(p):
                    g = np.fromfile(p, dtype="<f4").astype(np.float64)
                    if g.shape != r.shape:
                        notes.append(f"- {model}: {other} output has {g.size} values, {ref_name} {r.size}")
                        continue
                    d = g - r
                    notes.append(f"- {model}, benchmark inputs: {other} vs {ref_name}: rel RMS "
                                 f"{np.sqrt((d * d).sum() / (r * r).sum()):.2e}, "
                                 f"max rel {np.abs(d).max() / np.abs(r).max():.2e}")
    for n in notes:
        print(n)
    loads = []
    for p in sorted(glob.glob(os.path.join(res, "*.load"))):
        with open(p) as f:
            loads.append(f"{os.path.basename(p)[:-5]}: " + f.read().strip().replace("\n", ", "))
    if loads:
        print()
        print("<details><summary>conditions</summary>\n")
        for line in loads:
            print(f"- {line}")
        print("\n</details>")
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = re.search(r"model name\s*:\s*(.*)", f.read()).group(1)
    except (OSError, AttributeError):
        pass
    print(f"\nCPU: {cpu}, {os.cpu_count()} cores; 2 threads each.")


if __name__ == "__main__":
    main()
