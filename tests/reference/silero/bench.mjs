// onnxruntime's time per chunk on the same audio as tests/bench/silero:
// one thread, the whole file streamed chunk by chunk with the state carried,
// best of several passes. Prints one line per rate:
//   onnxruntime-node 1.30.0 16000 Hz: 98.1 us/chunk (best of 5 passes of 256 chunks)
// Usage: node bench.mjs [WAV16K] [WAV8K]   (default: wav/speechnoise*.wav)
import ort from 'onnxruntime-node';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readWav, runStream, session } from './wav.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const version = JSON.parse(readFileSync(join(here, 'node_modules/onnxruntime-node/package.json'))).version;
const files = process.argv.length > 2 ? process.argv.slice(2)
  : ['speechnoise16k.wav', 'speechnoise8k.wav'].map((f) => join(here, 'wav', f));
const PASSES = Number(process.env.BENCH_PASSES || 5);
const sess = await session(ort);

for (const f of files) {
  const wav = readWav(f);
  await runStream(ort, sess, wav); // warm up
  let best = Infinity, chunks = 0;
  for (let p = 0; p < PASSES; p++) {
    const t0 = process.hrtime.bigint();
    chunks = (await runStream(ort, sess, wav)).length;
    const us = Number(process.hrtime.bigint() - t0) / 1000 / chunks;
    best = Math.min(best, us);
  }
  console.log(`onnxruntime-node ${version} ${wav.rate} Hz: ${best.toFixed(1)} us/chunk ` +
    `(best of ${PASSES} passes of ${chunks} chunks, 1 thread)`);
}
