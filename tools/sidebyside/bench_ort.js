// Times one ONNX model in ONNX Runtime (onnxruntime-node, CPU execution provider): a warm-up
// run, then --runs timed runs; prints one JSON line. With --ref it also compares the output
// with a raw float32 file (PyTorch fp32's output on the same inputs); --save-output writes it.
//
//   NODE_PATH=$SCRATCH/node/node_modules node bench_ort.js --onnx FILE --inputs DIR \
//       --model unet|vae|clip [--runs 3] [--threads 2] [--ref FILE] [--save-output FILE]
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

function args() {
  const a = { runs: 3, threads: 2 };
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i += 2) a[v[i].replace(/^--/, '')] = v[i + 1];
  for (const k of ['onnx', 'inputs', 'model']) if (!a[k]) throw new Error(`--${k} is required`);
  a.runs = +a.runs;
  a.threads = +a.threads;
  return a;
}

function readInputs(dir, model) {
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'inputs.json')))[model];
  const feeds = {};
  for (const e of index) {
    const buf = fs.readFileSync(path.join(dir, model, e.name + '.bin'));
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
    const data = e.dtype === 'int64' ? new BigInt64Array(ab) : new Float32Array(ab);
    feeds[e.name] = new ort.Tensor(e.dtype === 'int64' ? 'int64' : 'float32', data, e.shape);
  }
  return feeds;
}

function compare(got, file) {
  const buf = fs.readFileSync(file);
  const ref = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  if (ref.length !== got.length) return { error: `length ${got.length} vs ${ref.length}` };
  let num = 0, den = 0, maxd = 0, maxr = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = got[i] - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
    maxd = Math.max(maxd, Math.abs(d));
    maxr = Math.max(maxr, Math.abs(ref[i]));
  }
  return { max_rel: maxd / maxr, rel_rms: Math.sqrt(num / den) };
}

async function main() {
  const a = args();
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(a.onnx, {
    executionProviders: ['cpu'],
    intraOpNumThreads: a.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const loadS = (performance.now() - t0) / 1000;
  const feeds = readInputs(a.inputs, a.model);
  let out = await session.run(feeds); // warm-up
  const times = [];
  for (let i = 0; i < a.runs; i++) {
    const t = performance.now();
    out = await session.run(feeds);
    times.push((performance.now() - t) / 1000);
  }
  const sorted = [...times].sort((x, y) => x - y);
  const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]
    : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  const rec = {
    system: 'onnxruntime-fp32', model: a.model, threads: a.threads,
    ort: require('onnxruntime-node/package.json').version,
    load_s: +loadS.toFixed(2), times, median,
  };
  const data = out[session.outputNames[0]].data;
  if (a.ref) rec.vs_pytorch_fp32 = compare(data, a.ref);
  if (a['save-output']) fs.writeFileSync(a['save-output'], Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  console.log(JSON.stringify(rec));
}

main().catch((e) => { console.error(e); process.exit(1); });
