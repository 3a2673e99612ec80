// onnxruntime's time per chunk on the same audio as tests/bench/silero:
// one thread, the whole file streamed chunk by chunk with the state carried
// (as Silero's own wrapper does), every call timed. One line per rate.
// Usage: node bench.mjs [WAV16K] [WAV8K]   (default: wav/speechnoise*.wav)
import ort from 'onnxruntime-node';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chunks, readWav, runStream, session } from './wav.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const version = JSON.parse(readFileSync(join(here, 'node_modules/onnxruntime-node/package.json'))).version;
const files = process.argv.length > 2 ? process.argv.slice(2)
  : ['speechnoise16k.wav', 'speechnoise8k.wav'].map((f) => join(here, 'wav', f));
const PASSES = Number(process.env.BENCH_PASSES || 10);
const sess = await session(ort);

// Times every session.run() like the C benchmark times every call, and
// prints the median and the 10th percentile (the machine may be shared).
async function timeStream(wav) {
  const times = [];
  let state = new ort.Tensor('float32', new Float32Array(2 * 128), [2, 1, 128]);
  const sr = new ort.Tensor('int64', BigInt64Array.from([BigInt(wav.rate)]), []);
  for (const input of chunks(wav)) {
    const feeds = { input: new ort.Tensor('float32', input, [1, input.length]), state, sr };
    const t0 = process.hrtime.bigint();
    const out = await sess.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1000);
    state = out.stateN;
  }
  return times;
}

for (const f of files) {
  const wav = readWav(f);
  await runStream(ort, sess, wav); // warm up
  let times = [];
  for (let p = 0; p < PASSES; p++) times = times.concat(await timeStream(wav));
  times.sort((a, b) => a - b);
  const median = times[times.length >> 1], p10 = times[Math.floor(times.length / 10)];
  console.log(`onnxruntime-node ${version} ${String(wav.rate).padStart(5)} Hz, 1 chunk  per call: ` +
    `${median.toFixed(1).padStart(6)} us/chunk (median), ${p10.toFixed(1).padStart(6)} (10th percentile), 1 thread`);
}
