// Writes tests/silero/golden/NAME.txt: onnxruntime's speech probability for
// every chunk of each WAV in wav/, the reference the C implementation must
// match within 1e-4. Usage (from this folder, after `npm ci`):
//   node reference.mjs            all of wav/*.wav
//   node reference.mjs FILE.wav   print one file's probabilities
import ort from 'onnxruntime-node';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readWav, runStream, session, MODEL } from './wav.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const goldenDir = join(here, '..', '..', 'silero', 'golden');
const ortVersion = JSON.parse(readFileSync(join(here, 'node_modules/onnxruntime-node/package.json'))).version;
const sha = createHash('sha256').update(readFileSync(MODEL)).digest('hex');
const sess = await session(ort);

const args = process.argv.slice(2);
if (args.length) {
  for (const f of args) {
    const probs = await runStream(ort, sess, readWav(f));
    probs.forEach((p) => console.log(p.toFixed(8)));
  }
} else {
  mkdirSync(goldenDir, { recursive: true });
  for (const f of readdirSync(join(here, 'wav')).filter((n) => n.endsWith('.wav')).sort()) {
    const wav = readWav(join(here, 'wav', f));
    const probs = await runStream(ort, sess, wav);
    const lines = [
      `# onnxruntime-node ${ortVersion}, silero_vad.onnx sha256 ${sha}`,
      `# ${f}: ${wav.rate} Hz, ${probs.length} chunks of ${wav.rate === 16000 ? 512 : 256} samples`,
      ...probs.map((p) => p.toFixed(8)),
    ];
    writeFileSync(join(goldenDir, basename(f, '.wav') + '.txt'), lines.join('\n') + '\n');
    console.log(`${f}: ${probs.length} chunks, max p ${Math.max(...probs).toFixed(3)}`);
  }
}
