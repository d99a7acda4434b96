#!/usr/bin/env bash
# run.sh measures smallsd, ONNX Runtime 1.30 and PyTorch 1.13 side by side on this machine, on the
# same full-size models with the same synthetic weights, and prints one markdown table.
#
#   tools/sidebyside/run.sh                 # everything
#   tools/sidebyside/run.sh smallsd         # only smallsd's side (the others' results are reused)
#   tools/sidebyside/run.sh pytorch onnxruntime verify
#
# Parts, run in the order given: verify (PyTorch models against the diffusers reference),
# pytorch, onnxruntime, smallsd.
# Generated files (weights, ONNX models, inputs, results) go to $SCRATCH (default
# /work/sxs-scratch), never into the repository. Every heavy step runs under the shared lock
# $LOCK, one at a time. RUNS timed runs after a warm-up (median and fastest reported; smallsd's
# benchmarks run -count RUNS, each with its own warm-up); the text encoder, being fast, gets
# CLIP_RUNS in PyTorch and ONNX Runtime, and -benchtime 5x in smallsd.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# SMALLSD: the checkout whose benchmarks are run (default: the one holding this script).
SMALLSD=${SMALLSD:-$ROOT}
SCRATCH=${SCRATCH:-/work/sxs-scratch}
LOCK=${LOCK:-/tmp/smallsd-heavy.lock}
RUNS=${RUNS:-3}
CLIP_RUNS=${CLIP_RUNS:-20}
THREADS=2
PY=/usr/bin/python3
RES=$SCRATCH/results
PARTS=${*:-verify pytorch onnxruntime smallsd}
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

SCRATCH=$SCRATCH "$HERE/setup.sh" >&2
mkdir -p "$RES" "$SCRATCH/bin"

log "exporting the synthetic weights to $SCRATCH/models"
(cd "$ROOT" && go run ./tools/sidebyside/export -out "$SCRATCH/models" -testdata testdata) >&2
"$PY" "$HERE/inputs.py" "$ROOT/testdata/fullsize-golden.safetensors" "$SCRATCH/inputs"

# measure NAME CMD...: runs CMD under the lock and /usr/bin/time -v; its stdout (one JSON line,
# or go test's benchmark lines) goes to $RES/NAME.json, time's report (peak RSS) to
# $RES/NAME.time, the date and load average before and after to $RES/NAME.load.
measure() {
	local name=$1
	shift
	log "$name: $*"
	flock "$LOCK" bash -c '
		load=$0 tfile=$1 out=$2
		shift 2
		echo "$(date -u +%FT%TZ) load before $(cut -d" " -f1-3 /proc/loadavg)" >"$load"
		/usr/bin/time -v -o "$tfile" "$@" >"$out"
		st=$?
		echo "load after $(cut -d" " -f1-3 /proc/loadavg)" >>"$load"
		exit $st' "$RES/$name.load" "$RES/$name.time" "$RES/$name.json" "$@" ||
		log "$name FAILED (see $RES/$name.time)"
}

part_verify() {
	log "verify: PyTorch models against testdata/fullsize-golden.safetensors"
	(cd "$HERE" && flock "$LOCK" "$PY" verify.py "$SCRATCH/models" \
		"$ROOT/testdata/fullsize-golden.safetensors" --threads $THREADS) >"$RES/verify.jsonl"
}

runs() { [ "$1" = clip ] && echo "$CLIP_RUNS" || echo "$RUNS"; }

part_pytorch() {
	local m dt
	for m in unet vae clip; do
		for dt in fp32 bf16; do
			# OpenBLAS picks its AVX-512 kernels unless the environment pins an older core type.
			(cd "$HERE" && measure "pytorch-$dt.$m" env -u OPENBLAS_CORETYPE "$PY" bench_torch.py \
				--model $m --dtype $dt --models "$SCRATCH/models" --inputs "$SCRATCH/inputs" \
				--runs "$(runs $m)" --threads $THREADS --save-output "$SCRATCH/out/$m.pytorch-$dt.bin")
		done
	done
}

part_onnxruntime() {
	local m
	for m in unet vae clip; do
		if [ ! -f "$SCRATCH/onnx/$m/model.onnx" ]; then
			log "exporting $m to ONNX"
			(cd "$HERE" && flock "$LOCK" "$PY" export_onnx.py --model $m --models "$SCRATCH/models" \
				--inputs "$SCRATCH/inputs" --out "$SCRATCH/onnx/$m/model.onnx") 2>"$RES/onnx-export.$m.log" >&2
		fi
		measure "onnxruntime-fp32.$m" env NODE_PATH="$SCRATCH/node/node_modules" node "$HERE/bench_ort.js" \
			--onnx "$SCRATCH/onnx/$m/model.onnx" --inputs "$SCRATCH/inputs" --model $m \
			--runs "$(runs $m)" --threads $THREADS --save-output "$SCRATCH/out/$m.onnxruntime-fp32.bin"
	done
}

part_smallsd() {
	local rev pkg name bench benchtime
	rev=$(git -C "$SMALLSD" rev-parse --short HEAD)
	for pkg in unet vae clip; do
		log "building $pkg's test binary at $rev"
		(cd "$SMALLSD" && go test -c -o "$SCRATCH/bin/$pkg.test" ./$pkg)
	done
	# name package benchmark benchtime
	while read -r name pkg bench benchtime; do
		(cd "$SMALLSD/$pkg" && measure "$name" "$SCRATCH/bin/$pkg.test" -test.run '^$' \
			-test.bench "$bench" -test.benchtime "$benchtime" -test.count "$RUNS")
		echo "commit $rev" >>"$RES/$name.load"
	done <<-LIST
		smallsd-fp32.unet unet ^BenchmarkUNetSmallSD\$/^64x64\$ 1x
		smallsd-bf16.unet unet ^BenchmarkUNetSmallSDBF16\$/^64x64\$ 1x
		smallsd-fp32.vae vae ^BenchmarkDecode\$/^64x64\$ 1x
		smallsd-bf16.vae vae ^BenchmarkDecodeBF16\$/^64x64\$ 1x
		smallsd-fp32.clip clip ^BenchmarkTextEncoderL14\$ 5x
		smallsd-bf16.clip clip ^BenchmarkTextEncoderL14BF16\$ 5x
	LIST
}

mkdir -p "$SCRATCH/out"
for part in $PARTS; do
	case $part in
	verify | pytorch | onnxruntime | smallsd) "part_$part" ;;
	*)
		echo "run.sh: unknown part $part (want verify, pytorch, onnxruntime, smallsd)" >&2
		exit 2
		;;
	esac
done

"$PY" "$HERE/table.py" "$RES" "$SCRATCH/out"
