// Minimal WAV reader for the reference scripts: 16-bit PCM mono only.
import { readFileSync } from 'node:fs';

export function readWav(path) {
  const buf = readFileSync(path);
  if (buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE')
    throw new Error(`${path}: not a RIFF/WAVE file`);
  let rate = 0, data = null;
  for (let off = 12; off + 8 <= buf.length;) {
    const id = buf.toString('ascii', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    const body = off + 8;
    if (id === 'fmt ') {
      const format = buf.readUInt16LE(body), channels = buf.readUInt16LE(body + 2);
      const bits = buf.readUInt16LE(body + 14);
      rate = buf.readUInt32LE(body + 4);
      if (format !== 1 || channels !== 1 || bits !== 16)
        throw new Error(`${path}: need 16-bit PCM mono`);
    } else if (id === 'data') {
      const n = Math.min(size, buf.length - body) >> 1;
      data = new Float32Array(n);
      // Same conversion as the element: S16 / 32768.
      for (let i = 0; i < n; i++) data[i] = buf.readInt16LE(body + 2 * i) / 32768;
    }
    off = body + size + (size & 1);
  }
  if (!rate || !data) throw new Error(`${path}: no fmt or data chunk`);
  return { rate, samples: data };
}

// Silero's streaming wrapper: each chunk is prefixed with the previous
// chunk's last `context` samples (zeros at the start), and the LSTM state
// [2, 1, 128] is carried. Yields the model inputs chunk by chunk.
export function* chunks(wav) {
  const size = wav.rate === 16000 ? 512 : 256;
  const context = size / 8;
  let prev = new Float32Array(context);
  for (let i = 0; i + size <= wav.samples.length; i += size) {
    const input = new Float32Array(context + size);
    input.set(prev, 0);
    input.set(wav.samples.subarray(i, i + size), context);
    prev = input.slice(input.length - context);
    yield input;
  }
}

export const MODEL = process.env.SILERO_MODEL ||
  `${process.env.VOICEAGENT_MODEL_DIR || '/usr/local/share/gst-voiceagent'}/silero_vad.onnx`;

export async function session(ort) {
  return ort.InferenceSession.create(MODEL, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
}

// Runs one stream through the model; returns the per-chunk probabilities.
export async function runStream(ort, sess, wav, onChunk) {
  let state = new ort.Tensor('float32', new Float32Array(2 * 128), [2, 1, 128]);
  const sr = new ort.Tensor('int64', BigInt64Array.from([BigInt(wav.rate)]), []);
  const probs = [];
  for (const input of chunks(wav)) {
    const feeds = { input: new ort.Tensor('float32', input, [1, input.length]), state, sr };
    const out = await sess.run(feeds);
    state = out.stateN;
    probs.push(out.output.data[0]);
    if (onChunk) onChunk();
  }
  return probs;
}
