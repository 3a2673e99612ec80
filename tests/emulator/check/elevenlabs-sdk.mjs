// The official `@elevenlabs/elevenlabs-js` SDK against voiceagent-emulator's
// ElevenLabs service: its HTTP client for /stream and /convert, and its wire
// schemas (the SDK's own serializers, generated from ElevenLabs' API
// definition) for every WebSocket message both ways. The SDK has no socket
// client of its own, so the socket is `ws`, which the SDK depends on.
// Run by control-sdk-runner.sh (EMULATOR_URL, EMULATOR_ELEVENLABS_KEY).
// SPDX-License-Identifier: LGPL-2.1-or-later
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { ElevenLabsClient, ElevenLabsError } from '@elevenlabs/elevenlabs-js';
import WebSocket from 'ws';

const require = createRequire(import.meta.url);
const ser = require('@elevenlabs/elevenlabs-js/serialization');

const base = process.env.EMULATOR_URL;
const key = process.env.EMULATOR_ELEVENLABS_KEY;
const wsBase = base.replace(/^http/, 'ws');
const client = new ElevenLabsClient({ apiKey: key, baseUrl: base });

async function readAll(stream) {
  const parts = [];
  for await (const p of stream) parts.push(Buffer.from(p));
  return Buffer.concat(parts);
}

// Parses a received frame with the SDK's schema, strictly: no unknown keys.
// The real service sends "isFinal": null on audio frames, which the schema
// leaves out; it is checked here and then dropped.
function receive(schema, raw) {
  const m = JSON.parse(raw);
  if ('audio' in m) {
    assert.equal(m.isFinal, null);
    delete m.isFinal;
  }
  const r = schema.parse(m, { unrecognizedObjectKeys: 'fail' });
  assert.ok(r.ok, `${raw.slice(0, 120)}: ${JSON.stringify(r.errors)}`);
  return r.value;
}

function connect(path) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${wsBase}${path}`, { headers: { 'xi-api-key': key } });
    const frames = [];
    let closed = null;
    let waiter = null;
    ws.on('message', (d) => { frames.push(d.toString()); waiter?.(); });
    ws.on('close', (code, reason) => { closed = { code, reason: reason.toString() }; waiter?.(); });
    ws.on('open', () => resolve({
      send: (schema, msg) => ws.send(JSON.stringify(schema.jsonOrThrow(msg, { unrecognizedObjectKeys: 'fail' }))),
      // Frames until the socket closes, and its close code.
      async drain(timeoutMs = 20000) {
        const end = Date.now() + timeoutMs;
        while (!closed && Date.now() < end) await new Promise((r) => { waiter = r; setTimeout(r, 100); });
        assert.ok(closed, 'socket closed');
        return { frames, closed };
      },
    }));
    ws.on('error', reject);
  });
}

test('textToSpeech.stream returns raw PCM in the asked format', async () => {
  const stream = await client.textToSpeech.stream('JBFqnCBsd6RMkjVDRZzb', {
    text: 'Hello from the emulator. This is a second sentence.',
    modelId: 'eleven_flash_v2_5',
    outputFormat: 'pcm_16000',
  });
  const audio = await readAll(stream);
  assert.equal(audio.length % 2, 0);
  assert.ok(audio.length > 32000, `${audio.length} bytes is more than a second`);
});

test('textToSpeech.convert returns ulaw_8000 audio', async () => {
  const stream = await client.textToSpeech.convert('JBFqnCBsd6RMkjVDRZzb', {
    text: 'Short one.',
    outputFormat: 'ulaw_8000',
  });
  const audio = await readAll(stream);
  assert.ok(audio.length > 2000 && audio.length < 40000, `${audio.length} bytes`);
});

test('a wrong key is ElevenLabsError 401 with detail.status invalid_api_key', async () => {
  const bad = new ElevenLabsClient({ apiKey: 'wrong', baseUrl: base, maxRetries: 0 });
  await assert.rejects(
    bad.textToSpeech.convert('v', { text: 'Hi.', outputFormat: 'pcm_16000' }),
    (e) => e instanceof ElevenLabsError && e.statusCode === 401 && e.body.detail.status === 'invalid_api_key',
  );
});

test('stream-input: SDK-shaped messages in, SDK-valid audio and isFinal out', async () => {
  const s = await connect('/v1/text-to-speech/JBFqnCBsd6RMkjVDRZzb/stream-input?model_id=eleven_flash_v2_5&output_format=pcm_24000');
  s.send(ser.SendMessage, {
    text: ' ',
    voiceSettings: { stability: 0.5, similarityBoost: 0.8, speed: 1.0 },
    generationConfig: { chunkLengthSchedule: [50, 120, 160, 250] },
  });
  s.send(ser.SendMessage, { text: 'The emulator speaks the words it is sent. ' });
  s.send(ser.SendMessage, { text: 'It answers as the real service would. ', flush: true });
  s.send(ser.SendMessage, { text: '' });
  const { frames, closed } = await s.drain();
  assert.equal(closed.code, 1000);
  const msgs = frames.map((f) => receive(ser.ReceiveMessage, f));
  const audio = msgs.filter((m) => m.audio);
  assert.ok(audio.length >= 2);
  for (const m of audio) {
    const a = m.alignment;
    assert.equal(a.chars.length, a.charStartTimesMs.length);
    assert.equal(a.chars.length, a.charDurationsMs.length);
    assert.equal(Buffer.from(m.audio, 'base64').length % 2, 0);
  }
  const spoken = audio.map((m) => m.alignment.chars.join('')).join(' ');
  assert.match(spoken, /emulator speaks/);
  assert.deepEqual(msgs[msgs.length - 1], { isFinal: true });
});

test('multi-stream-input: contexts, flush, close_context, close_socket', async () => {
  const s = await connect('/v1/text-to-speech/JBFqnCBsd6RMkjVDRZzb/multi-stream-input?model_id=eleven_flash_v2_5&output_format=pcm_16000');
  s.send(ser.SendMessageMulti, { text: ' ', contextId: 'turn-1' });
  s.send(ser.SendMessageMulti, { text: 'First turn of the agent. ', contextId: 'turn-1', flush: true });
  s.send(ser.SendMessageMulti, { contextId: 'turn-1', closeContext: true });
  s.send(ser.SendMessageMulti, { text: 'Second turn. ', contextId: 'turn-2', flush: true });
  s.send(ser.SendMessageMulti, { closeSocket: true });
  const { frames, closed } = await s.drain();
  assert.equal(closed.code, 1000);
  const msgs = frames.map((f) => receive(ser.ReceiveMessageMulti, f));
  for (const id of ['turn-1', 'turn-2']) {
    const mine = msgs.filter((m) => m.contextId === id);
    assert.ok(mine.some((m) => m.audio), `${id} has audio`);
    assert.deepEqual(mine[mine.length - 1], { isFinal: true, contextId: id });
  }
});
