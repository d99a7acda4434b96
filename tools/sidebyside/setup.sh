#!/usr/bin/env bash
# setup.sh installs what the side-by-side comparison needs, idempotently:
#   - Debian's PyTorch 1.13 (python3-torch), ONNX (python3-onnx) and NumPy, for /usr/bin/python3;
#   - onnxruntime-node 1.30.0 from npm, into $SCRATCH/node (never into the repository).
# Usage: tools/sidebyside/setup.sh            (SCRATCH defaults to /work/sxs-scratch)
set -euo pipefail
SCRATCH=${SCRATCH:-/work/sxs-scratch}
PY=/usr/bin/python3
ORT_VERSION=1.30.0

# Debian's torch links the generic libblas.so.3; without OpenBLAS installed that is the netlib
# reference BLAS, and every fp32 Linear would run at a fraction of the machine's speed. The OpenMP
# build of OpenBLAS matches torch's own OpenMP threading.
BLAS=/usr/lib/x86_64-linux-gnu/libblas.so.3
if ! "$PY" -c 'import torch, onnx, numpy' 2>/dev/null || [ ! -x /usr/bin/time ] ||
	[[ "$(readlink -f $BLAS)" != *openblas* ]]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update
	apt-get install -y --no-install-recommends python3-torch python3-onnx python3-numpy \
		libopenblas0-openmp time
fi

mkdir -p "$SCRATCH/node"
if ! (cd "$SCRATCH/node" && node -e "if (require('onnxruntime-node/package.json').version !== '$ORT_VERSION') process.exit(1)") 2>/dev/null; then
	cd "$SCRATCH/node"
	[ -f package.json ] || echo '{"name":"smallsd-sidebyside","private":true}' >package.json
	# The CPU build ships inside the npm package; the install script would only fetch the CUDA
	# provider from outside the registry, so it is told to skip that.
	ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund "onnxruntime-node@$ORT_VERSION"
fi

"$PY" -c 'import torch, onnx, numpy; print("torch", torch.__version__, "(Debian 1.13.1)", "onnx", onnx.__version__, "numpy", numpy.__version__)'
(cd "$SCRATCH/node" && node -e "const o=require('onnxruntime-node'); console.log('onnxruntime-node', require('onnxruntime-node/package.json').version)")
echo "BLAS: $(readlink -f $BLAS)"
