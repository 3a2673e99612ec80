// The official `@deepgram/sdk` (v5) against voiceagent-emulator's Deepgram
// live service: the SDK's own socket client (`client.listen.v1.connect`, its
// URL building, Authorization header, typed send methods) streams an
// espeak-ng sentence to /v1/listen, and every message it gets back must have
// the shape of the SDK's types (ListenV1Results, ListenV1SpeechStarted,
// ListenV1UtteranceEnd, ListenV1Metadata) with a transcript that holds the
// spoken words (pocketsphinx, the emulator's default engine).
// Run by control-sdk-runner.sh (EMULATOR_URL, EMULATOR_DEEPGRAM_KEY).
// SPDX-License-Identifier: LGPL-2.1-or-later
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeepgramClient } from '@deepgram/sdk';

const base = process.env.EMULATOR_URL;
const key = process.env.EMULATOR_DEEPGRAM_KEY;
const src = process.env.VOICEAGENT_SOURCE_DIR ?? join(import.meta.dirname, '../../..');
const wav = readFileSync(join(src, 'tests/emulator/check/data/deepgram-pizza.wav'));
const pcm = wav.subarray(44); // 16 kHz mono S16LE after a 44-byte header
const EXPECTED = ['want', 'order', 'large', 'pizza', 'cheese'];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// One live session: connects with @args, runs @feed(connection), and collects
// every message until the server closes (or @timeoutMs passes).
async function session(clientOptions, args, feed, timeoutMs = 60000) {
  const client = new DeepgramClient({ baseUrl: base, ...clientOptions });
  const conn = await client.listen.v1.connect({ reconnectAttempts: 0, ...args });
  const messages = [];
  let closed = null;
  let error = null;
  conn.on('message', (m) => messages.push(m));
  conn.on('close', (e) => { closed = { code: e.code, reason: e.reason }; });
  conn.on('error', (e) => { error = e; });
  conn.connect();
  await conn.waitForOpen();
  await feed(conn, messages);
  const end = Date.now() + timeoutMs;
  while (!closed && Date.now() < end) await sleep(20);
  return { messages, closed, error, conn };
}

// Sends @bytes in 100 ms chunks, five times faster than real time.
async function stream(conn, bytes) {
  for (let off = 0; off < bytes.length; off += 3200) {
    conn.sendMedia(bytes.subarray(off, off + 3200));
    await sleep(20);
  }
}

const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

// ListenV1Results, field by field (types from the SDK's .d.ts).
function checkResults(m, { punctuated }) {
  assert.equal(m.type, 'Results');
  assert.deepEqual(m.channel_index, [0, 1]);
  assert.ok(isNum(m.duration) && m.duration >= 0, 'duration');
  assert.ok(isNum(m.start) && m.start >= 0, 'start');
  assert.equal(typeof m.is_final, 'boolean');
  assert.equal(typeof m.speech_final, 'boolean');
  assert.equal(typeof m.from_finalize, 'boolean');
  if (m.speech_final) assert.ok(m.is_final, 'speech_final implies is_final');
  assert.equal(m.channel.alternatives.length, 1);
  const alt = m.channel.alternatives[0];
  assert.equal(typeof alt.transcript, 'string');
  assert.ok(isNum(alt.confidence) && alt.confidence >= 0 && alt.confidence <= 1);
  assert.ok(Array.isArray(alt.words));
  for (const w of alt.words) {
    assert.equal(typeof w.word, 'string');
    assert.ok(isNum(w.start) && isNum(w.end) && w.start <= w.end, 'word times');
    assert.ok(w.start >= m.start - 0.3 && w.end <= m.start + m.duration + 0.01,
      `word ${w.word} [${w.start}, ${w.end}] inside [${m.start}, +${m.duration}]`);
    assert.ok(isNum(w.confidence) && w.confidence >= 0 && w.confidence <= 1);
    if (punctuated) assert.equal(typeof w.punctuated_word, 'string');
    else assert.equal(w.punctuated_word, undefined);
  }
  if (alt.words.length) {
    const words = alt.words.map((w) => (punctuated ? w.punctuated_word : w.word));
    assert.equal(alt.transcript, words.join(' '));
  }
  assert.equal(typeof m.metadata.request_id, 'string');
  assert.equal(typeof m.metadata.model_uuid, 'string');
  for (const f of ['name', 'version', 'arch']) assert.equal(typeof m.metadata.model_info[f], 'string');
}

function checkMetadata(m, audio) {
  assert.equal(m.type, 'Metadata');
  assert.equal(typeof m.transaction_key, 'string');
  assert.equal(typeof m.request_id, 'string');
  assert.equal(m.sha256, createHash('sha256').update(audio).digest('hex'));
  assert.ok(!Number.isNaN(Date.parse(m.created)), `created ${m.created}`);
  assert.ok(Math.abs(m.duration - audio.length / 32000) < 0.01, `duration ${m.duration}`);
  assert.equal(m.channels, 1);
  assert.ok(Array.isArray(m.models) && m.models.length === 1);
  assert.equal(typeof m.model_info[m.models[0]].name, 'string');
}

test('a streamed WAV comes back as Results with the spoken words, then Metadata and 1000', async () => {
  const silence = Buffer.alloc(32000 * 1.5);
  const audio = Buffer.concat([pcm, silence]);
  const { messages, closed } = await session({ apiKey: key }, {
    model: 'nova-3',
    language: 'en-US',
    encoding: 'linear16',
    sample_rate: 16000,
    channels: 1,
    interim_results: 'true',
    punctuate: 'true',
    smart_format: 'true',
    vad_events: 'true',
    utterance_end_ms: 1000,
    endpointing: 300,
    keyterm: ['pizza', 'cheese'],
  }, async (conn) => {
    await stream(conn, audio);
    conn.sendCloseStream({ type: 'CloseStream' });
  });

  assert.deepEqual(closed?.code, 1000);
  const results = messages.filter((m) => m.type === 'Results');
  for (const r of results) checkResults(r, { punctuated: true });
  const finals = results.filter((r) => r.is_final);
  const interims = results.filter((r) => !r.is_final);
  assert.ok(interims.length >= 1, 'interim results while decoding');
  assert.ok(finals.some((r) => r.speech_final), 'an endpoint gives speech_final');
  // finals tile the audio: each starts where the one before ended
  for (let i = 1; i < finals.length; i++) {
    assert.ok(Math.abs(finals[i].start - (finals[i - 1].start + finals[i - 1].duration)) < 0.002);
  }
  const heard = finals.map((r) => r.channel.alternatives[0].transcript).join(' ').toLowerCase();
  const got = EXPECTED.filter((w) => heard.split(/[^a-z']+/).includes(w));
  console.log(`# heard: "${heard}" (${got.length}/${EXPECTED.length} expected words)`);
  assert.ok(got.length >= 3, `expected most of ${EXPECTED} in "${heard}"`);

  const started = messages.filter((m) => m.type === 'SpeechStarted');
  assert.ok(started.length >= 1, 'SpeechStarted with vad_events');
  for (const s of started) {
    assert.deepEqual(s.channel, [0, 1]);
    assert.ok(isNum(s.timestamp));
  }
  const ends = messages.filter((m) => m.type === 'UtteranceEnd');
  assert.ok(ends.length >= 1, 'UtteranceEnd after 1000 ms without words');
  for (const u of ends) {
    assert.deepEqual(u.channel, [0, 1]);
    assert.ok(isNum(u.last_word_end));
  }
  const last = messages.at(-1);
  checkMetadata(last, audio);
  assert.equal(messages.filter((m) => m.type === 'Metadata').length, 1);
});

test('Finalize flushes with from_finalize; KeepAlive is accepted', async () => {
  let flushed = null;
  const { messages, closed } = await session({ apiKey: key }, {
    model: 'nova-3', encoding: 'linear16', sample_rate: 16000,
  }, async (conn, msgs) => {
    conn.sendKeepAlive({ type: 'KeepAlive' });
    await stream(conn, pcm.subarray(0, 32000 * 2));
    conn.sendFinalize({ type: 'Finalize' });
    const end = Date.now() + 30000;
    while (!flushed && Date.now() < end) {
      flushed = msgs.find((m) => m.type === 'Results' && m.from_finalize);
      await sleep(20);
    }
    conn.sendCloseStream({ type: 'CloseStream' });
  });
  assert.ok(flushed, 'a Results with from_finalize: true');
  assert.equal(flushed.is_final, true);
  checkResults(flushed, { punctuated: false });
  assert.equal(closed?.code, 1000);
  assert.equal(messages.at(-1).type, 'Metadata');
});

test('an access token (Bearer) is accepted', async () => {
  const { closed } = await session({ accessToken: key }, { encoding: 'mulaw', sample_rate: 8000 },
    async (conn) => {
      conn.sendMedia(Buffer.alloc(8000, 0xff));
      conn.sendCloseStream({ type: 'CloseStream' });
    });
  assert.equal(closed?.code, 1000);
});

test('a wrong key fails the handshake with 401', async () => {
  const client = new DeepgramClient({ apiKey: 'wrong-key', baseUrl: base });
  const conn = await client.listen.v1.connect({ model: 'nova-3', reconnectAttempts: 0 });
  let error = null;
  let closed = null;
  let opened = false;
  conn.on('open', () => { opened = true; });
  conn.on('error', (e) => { error = e; });
  conn.on('close', (e) => { closed = e; });
  conn.connect();
  const end = Date.now() + 10000;
  while (!closed && Date.now() < end) await sleep(20);
  assert.equal(opened, false);
  assert.ok(error, 'an error event');
  assert.match(String(error.message), /401/);
  conn.close();
});
