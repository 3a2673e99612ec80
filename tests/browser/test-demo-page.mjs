// Real-browser end-to-end test of the demo page: Debian's Chromium, driven
// by playwright-core, calls a voiceagent server with a fake microphone that
// plays espeak-ng speech.
//
//   node test-demo-page.mjs --agent echo|full [--out DIR] [--keep] [--pipelines DIR]
//
// echo: the server runs tests/app/pipelines (the caller's voice comes back).
// full: the server runs the repo's pipelines/ with the local emulator, and
//       the page must also show a user transcript and the agent's text.
//
// Environment: VOICEAGENT_BIN (the server), VOICEAGENT_SOURCE_DIR (the
// checkout), VOICEAGENT_EMULATOR (full mode), CHROMIUM (default
// /usr/bin/chromium), BROWSER_TEST_MODULES (where node_modules is, set by
// run-browser-test), DEMO_PAGE_PATH (default /). Exit 0 pass, 1 fail, 77
// skip (run-browser-test turns that into a failure under strict).
// SPDX-License-Identifier: LGPL-2.1-or-later

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';

// run-browser-test installs playwright-core into the build dir; by hand,
// `npm ci` here works too.
const { chromium } = process.env.BROWSER_TEST_MODULES
  ? createRequire(path.join(process.env.BROWSER_TEST_MODULES, 'package.json'))('playwright-core')
  : await import('playwright-core');

const SKIP = 77;
const PAGE = process.env.DEMO_PAGE_PATH || '/';
const SPEECH = 'What time does the pizza place open tomorrow?';

const { values: opts } = parseArgs({
  options: {
    agent: { type: 'string', default: 'echo' },
    pipelines: { type: 'string' },
    out: { type: 'string', default: process.cwd() },
    keep: { type: 'boolean', default: false },
  },
});
if (!['echo', 'full'].includes(opts.agent)) {
  console.error(`--agent must be echo or full (got ${opts.agent})`);
  process.exit(2);
}
const mode = opts.agent;
const t0 = Date.now();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `voiceagent-browser-${mode}-`));
const results = [];
let server = null;
let context = null;
let callPage = null; // the page of the call, for the report on failure

function log(msg) {
  console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${msg}`);
}

class Skip extends Error {}

// A failed check ends the test unless it is soft: then the test goes on and
// fails at the end, so one run reports every check it can.
function check(name, ok, detail = '', { soft = false } = {}) {
  results.push({ name, ok: !!ok });
  log(`${ok ? 'ok    ' : 'FAIL  '} ${name}${detail ? ': ' + detail : ''}`);
  if (!ok && !soft) throw new Error(`check failed: ${name}${detail ? ': ' + detail : ''}`);
}

async function until(what, fn, timeoutMs, intervalMs = 100) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    if (server && server.exitCode !== null) throw new Error(`voiceagent exited (${server.exitCode}) while waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/* ---- The fake microphone: espeak-ng speech as 16-bit PCM WAV ---- */

function makeSpeechWav() {
  const raw = path.join(tmp, 'espeak.wav');
  const wav = path.join(tmp, 'speech.wav');
  execFileSync('espeak-ng', ['-s', '150', '-w', raw, SPEECH]);
  // Chromium wants 16-bit PCM; 48 kHz mono, with silence after the speech
  // so the VAD sees the turn end before the file loops.
  execFileSync('sox', [raw, '-r', '48000', '-c', '1', '-b', '16', '-e', 'signed-integer', wav, 'pad', '0.3', '2.5']);
  return wav;
}

/* ---- The server ---- */

async function startServer(token) {
  const src = process.env.VOICEAGENT_SOURCE_DIR || path.resolve(import.meta.dirname, '../..');
  const bin = process.env.VOICEAGENT_BIN;
  if (!bin || !fs.existsSync(bin)) throw new Error(`VOICEAGENT_BIN is not set or missing (${bin})`);
  const pipelines = opts.pipelines ||
    (mode === 'full' ? path.join(src, 'pipelines') : path.join(src, 'tests', 'app', 'pipelines'));
  // The repo has it: its absence is a bug, not a reason to skip.
  if (mode === 'full' && !fs.existsSync(path.join(pipelines, 'agent.pipeline')))
    throw new Error(`${pipelines}/agent.pipeline does not exist: the full agent cannot run`);
  const portFile = path.join(tmp, 'port');
  const env = { ...process.env };
  for (const k of ['DEEPGRAM_API_KEY', 'DEEPGRAM_URL', 'ELEVENLABS_API_KEY', 'ELEVENLABS_URL',
    'LLM_API_KEY', 'LLM_URL', 'OPENAI_API_KEY'])
    delete env[k];
  if (mode === 'echo') {
    // The echo template uses no service: keys keep the emulator from starting.
    env.DEEPGRAM_API_KEY = 'unused';
    env.ELEVENLABS_API_KEY = 'unused';
    env.LLM_API_KEY = 'unused';
  }
  // Secrets through the environment, as docs/http-api.md advises (a flag
  // would be in argv); the operator token lets the test list calls.
  env.VOICEAGENT_TOKEN = token;
  env.VOICEAGENT_ADMIN_TOKEN = adminToken;
  const args = ['--host', '127.0.0.1', '--port', '0', '--port-file', portFile, '--pipelines', pipelines,
    '--database', path.join(tmp, 'calls.db'), '--drain-timeout', '2'];
  if (mode === 'full' && process.env.VOICEAGENT_EMULATOR) args.push('--emulator', process.env.VOICEAGENT_EMULATOR);
  log(`starting ${bin} ${args.join(' ')}`);
  const out = fs.openSync(path.join(tmp, 'voiceagent.log'), 'w');
  server = spawn(bin, args, { env, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  server.on('exit', (code, sig) => log(`voiceagent (pid ${server.pid}) exited: ${code ?? sig}`));
  let port = 0;
  const end = Date.now() + 60000;
  while (!port) {
    if (server.exitCode !== null || server.signalCode !== null) {
      const text = fs.readFileSync(path.join(tmp, 'voiceagent.log'), 'utf8');
      process.stdout.write(text.replace(/^/gm, '  voiceagent| '));
      if (mode === 'full' && /\.pipeline:\d+: no (element|property) "/.test(text))
        throw new Skip('voiceagent refuses the full agent template (an element is missing; see its output above)');
      throw new Error(`voiceagent exited with ${server.exitCode ?? server.signalCode} before listening`);
    }
    if (Date.now() > end) throw new Error('voiceagent did not write its port file within 60 s');
    try {
      port = parseInt(fs.readFileSync(portFile, 'utf8'), 10) || 0;
    } catch {
      port = 0;
    }
    if (!port) await sleep(50);
  }
  return `http://127.0.0.1:${port}`;
}

async function stopServer() {
  if (!server || server.exitCode !== null || server.signalCode !== null) return;
  const exited = new Promise((resolve) => server.once('exit', (code, sig) => resolve(code ?? sig)));
  server.kill('SIGTERM');
  let how = await Promise.race([exited, sleep(10000).then(() => null)]);
  if (how === null) {
    server.kill('SIGTERM'); // a second signal ends the calls at once
    how = await Promise.race([exited, sleep(10000).then(() => null)]);
  }
  if (how === null) {
    server.kill('SIGKILL');
    how = await exited;
  }
  log(`voiceagent exited: ${how}`);
}

const adminToken = process.env.VOICEAGENT_ADMIN_TOKEN || 'browser-test-admin';

async function listCalls(base) {
  const resp = await fetch(`${base}/calls`, { headers: { Authorization: `Bearer ${adminToken}` } });
  if (!resp.ok) throw new Error(`GET /calls: HTTP ${resp.status}`);
  return resp.json();
}

/* ---- The browser ---- */

async function launch(wav) {
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  const profile = path.join(tmp, 'profile');
  context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    viewport: { width: 900, height: 1000 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${wav}`,
      // ICE between two processes on one machine: loopback candidates too.
      '--allow-loopback-in-peer-connection',
    ],
  });
  log(`chromium ${context.browser()?.version() ?? ''} up`);
  return context;
}

function watchPage(page, name) {
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') log(`${name} console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => log(`${name} page error: ${e.message}`));
}

async function inboundAudio(page) {
  return page.evaluate(async () => {
    const pc = window.voiceagent.pc;
    if (!pc) return null;
    const stats = await pc.getStats();
    for (const s of stats.values()) {
      if (s.type === 'inbound-rtp' && s.kind === 'audio')
        return { packets: s.packetsReceived || 0, energy: s.totalAudioEnergy || 0 };
    }
    return null;
  });
}

async function events(page) {
  return page.evaluate(() => window.voiceagent.events.filter((e) => e.dir === 'in').map((e) => e.text));
}

function eventTypes(texts) {
  const types = {};
  for (const t of texts) {
    let type = '(not JSON)';
    try {
      type = JSON.parse(t).type ?? '(no type)';
    } catch {}
    types[type] = (types[type] || 0) + 1;
  }
  return types;
}

/* ---- The test ---- */

// The echo agent sends no conversation events, so the page's handling of
// the protocol is checked with events dispatched on its real data channel
// (its onmessage handler runs as for a message from the server).
const SCRIPTED = [
  { type: 'vad', speaking: true },
  { type: 'transcript', role: 'user', text: 'what time', final: false, turn: 1 },
  { type: 'transcript', role: 'user', text: 'what time does the pizza', final: false, turn: 1 },
  { type: 'vad', speaking: false },
  { type: 'transcript', role: 'user', text: 'What time does the pizza place open tomorrow?', final: true, turn: 1 },
  { type: 'agent', speaking: true },
  { type: 'transcript', role: 'agent', text: 'It opens at eleven,', turn: 1 },
  { type: 'transcript', role: 'agent', text: 'and the kitchen closes at ten.', turn: 1 },
  { type: 'metrics', turn: 1, stt_ms: 41.6, llm_ttft_ms: 108, tts_ttfb_ms: 127.2, voice_to_voice_ms: 342 },
  { type: 'agent', speaking: false },
  { type: 'transcript', role: 'user', text: 'and on', final: false, turn: 2 },
  { type: 'transcript', role: 'user', text: 'And on Sunday?', final: true, turn: 2 },
  { type: 'agent', speaking: true },
  { type: 'transcript', role: 'agent', text: 'On Sunday it opens', turn: 2 },
  { type: 'vad', speaking: true },
  { type: 'interrupted', turn: 2 },
  { type: 'metrics', turn: 2, stt_ms: 39, llm_ttft_ms: null, voice_to_voice_ms: 0 },
  { type: 'transcript', role: 'user', text: 'thanks', final: false, turn: 3 },
  { type: 'some-future-event', value: 1 },
];

const SCRIPTED_ERROR = { type: 'error', message: 'LLM: HTTP 429 rate limited' };
const scriptedTexts = new Set([...SCRIPTED, SCRIPTED_ERROR].map((e) => JSON.stringify(e)));

async function checkRendering(page) {
  await page.evaluate((events) => {
    for (const e of events)
      window.voiceagent.channel.dispatchEvent(new MessageEvent('message', { data: JSON.stringify(e) }));
  }, SCRIPTED);
  const view = await page.evaluate(() => {
    const lines = [...document.querySelectorAll('#transcript .line')].map((l) => ({
      cls: l.className, text: l.querySelector('.text')?.textContent ?? l.textContent,
      interim: l.querySelector('.interim')?.textContent ?? null,
    }));
    const rows = [...document.querySelectorAll('#metrics tbody tr[data-turn]')]
      .map((r) => [...r.cells].map((c) => c.textContent));
    return {
      lines, rows,
      vad: document.getElementById('vad').classList.contains('on'),
      agent: document.getElementById('agent-speaking').classList.contains('on'),
    };
  });
  const soft = { soft: true };
  const [u1, a1, u2, a2, u3] = view.lines;
  check('an interim user transcript is replaced by the final',
    view.lines.length === 5 && u1.cls.includes('user') && u1.cls.includes('final') && u1.interim === null &&
    u1.text === 'What time does the pizza place open tomorrow?', JSON.stringify(u1), soft);
  check('agent text pieces are appended within a turn',
    a1 && a1.cls.includes('agent') && a1.text === 'It opens at eleven, and the kitchen closes at ten.',
    JSON.stringify(a1), soft);
  check('an interrupted agent turn is marked',
    u2 && u2.text === 'And on Sunday?' && a2 && a2.cls.includes('interrupted') && a2.text === 'On Sunday it opens',
    JSON.stringify([u2, a2]), soft);
  check('an interim user transcript is shown as interim',
    u3 && u3.interim === 'thanks' && !u3.cls.includes(' final'), JSON.stringify(u3), soft);
  check('the latency table has a row per turn, missing values as –',
    JSON.stringify(view.rows) === JSON.stringify([['1', '42', '108', '127', '342'], ['2', '39', '–', '–', '0']]),
    JSON.stringify(view.rows), soft);
  check('VAD and agent-speaking indicators follow the events', view.vad && !view.agent,
    `vad ${view.vad}, agent ${view.agent}`, soft);
  await page.evaluate((e) => window.voiceagent.channel.dispatchEvent(new MessageEvent('message',
    { data: JSON.stringify(e) })), SCRIPTED_ERROR);
  const err = await page.textContent('#error.shown .text').catch(() => '');
  check('an error event is shown', /Agent error/.test(err) && /HTTP 429 rate limited/.test(err), JSON.stringify(err), soft);
}

async function checkBadToken(base) {
  const page = await context.newPage();
  watchPage(page, 'bad-token page');
  await page.goto(`${base}${PAGE}?token=wrong`);
  await page.click('#call');
  await page.waitForSelector('#error.shown', { timeout: 15000 });
  const text = await page.textContent('#error .text');
  check('a refused call shows the HTTP error and the server\'s reason',
    /HTTP 401/.test(text) && /bearer token/i.test(text), JSON.stringify(text));
  check('the refused call ends in state failed',
    (await page.getAttribute('body', 'data-state')) === 'failed');
  await page.close();
}

async function run() {
  for (const tool of ['espeak-ng', 'sox']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      throw new Error(`${tool} is not installed (scripts/setup installs it)`);
    }
  }
  const wav = makeSpeechWav();
  const token = 'browser-test-token';
  const base = await startServer(token);
  log(`voiceagent at ${base}, agent ${mode}`);
  await launch(wav);

  const page = context.pages()[0] || (await context.newPage());
  callPage = page;
  watchPage(page, 'page');
  const resp = await page.goto(`${base}${PAGE}?token=${token}`);
  check('GET / serves the demo page', resp.status() === 200 && (await page.title()) === 'voiceagent',
    `HTTP ${resp.status()}`);
  const external = await page.evaluate(() =>
    [...document.querySelectorAll('[src],[href]')].map((e) => e.getAttribute('src') || e.getAttribute('href'))
      .filter((u) => /^(https?:)?\/\//.test(u)));
  check('the page loads no external resources', external.length === 0, external.join(' '));

  await page.click('#call');
  await page.waitForSelector('body[data-state="connected"]', { timeout: 20000 });
  const timeline = await page.evaluate(() => window.voiceagent.timeline);
  check('the call connects', (await page.textContent('#state')).startsWith('connected'),
    timeline.map(([s, t]) => `${s}@${t - timeline[0][1]}ms`).join(' '));
  const calls = await listCalls(base);
  check('the server lists the call', calls.length === 1, JSON.stringify(calls));

  await page.waitForSelector('#interrupt:not([disabled])', { timeout: 10000 });
  check('the data channel opens (Interrupt enabled)', true);
  const callEvent = await until('the {"type":"call"} event', async () =>
    (await events(page)).map((t) => JSON.parse(t)).find((e) => e.type === 'call'), 10000)
    .catch(() => null);
  check('the data channel delivers {"type":"call"} with the call id', callEvent && callEvent.id === calls[0].id,
    JSON.stringify(callEvent), { soft: true });
  check('the page shows the call id', (await page.textContent('#meta')).includes(calls[0].id), '', { soft: true });

  const audio = await until('audio from the server', async () => {
    const a = await inboundAudio(page);
    return a && a.packets > 0 && a.energy > 0 ? a : null;
  }, 20000, 250);
  check('RTP audio arrives from the server', audio.packets > 0, `${audio.packets} packets`);
  check('the received audio is not silent (getStats totalAudioEnergy)', audio.energy > 0, audio.energy.toExponential(2));
  const peak = await until('the agent level meter to move',
    () => page.evaluate(() => (window.voiceagent.remotePeak > 0.005 ? window.voiceagent.remotePeak : 0)), 15000, 250);
  check('the page hears the agent (WebAudio analyser on the remote stream)', peak > 0.005, `peak RMS ${peak.toFixed(3)}`);

  if (mode === 'full') {
    const user = await until('a final user transcript', () => page.evaluate(() => {
      const l = document.querySelector('#transcript .line.user.final .text');
      return l && l.textContent.trim();
    }), 60000, 250);
    check('a user transcript arrives on the page', !!user, JSON.stringify(user));
    const agentText = await until('agent text', () => page.evaluate(() => {
      const l = document.querySelector('#transcript .line.agent .text');
      return l && l.textContent.trim();
    }), 60000, 250);
    check('agent text arrives on the page', !!agentText, JSON.stringify(agentText));
    const row = await until('a latency row', () => page.evaluate(() => {
      const r = document.querySelector('#metrics tbody tr[data-turn]');
      return r && [...r.cells].map((c) => c.textContent).join(' | ');
    }), 30000, 250).catch(() => null);
    log(row ? `latency (turn | stt | llm_ttft | tts_ttfb | voice_to_voice ms): ${row}`
      : 'no latency row (no metrics event within 30 s)');
    log(`data channel events from the server, by type: ${JSON.stringify(eventTypes(await events(page)))}`);
  } else {
    await checkRendering(page);
  }

  await sleep(500);
  const shot = path.join(opts.out, `browser-${mode}.png`);
  await page.screenshot({ path: shot, fullPage: true });
  log(`screenshot: ${shot}`);

  await page.click('#call');
  await page.waitForSelector('body[data-state="ended"]', { timeout: 5000 });
  check('Hang up ends the call on the page', true);
  const left = await until('GET /calls to be empty', async () => {
    const l = await listCalls(base);
    return l.length === 0 ? l : null;
  }, 15000, 200);
  check('the server ends the call (GET /calls is empty)', left.length === 0);
  await page.screenshot({ path: path.join(opts.out, `browser-${mode}-ended.png`), fullPage: true });

  await checkBadToken(base);
}

let status = 0;
try {
  await run();
  if (results.some((r) => !r.ok)) status = 1;
} catch (e) {
  if (e instanceof Skip) {
    log(`SKIP: ${e.message}`);
    status = SKIP;
  } else {
    log(`error: ${e.stack || e}`);
    status = 1;
  }
}
if (status === 1 && callPage) {
  // What the server sent: enough to tell a page bug from a server that
  // does not send an event yet.
  const got = (await events(callPage).catch(() => [])).filter((t) => !scriptedTexts.has(t));
  log(`data channel events from the server, by type: ${JSON.stringify(eventTypes(got))}`);
  for (const t of got.slice(-15)) log(`  ← ${t.length > 300 ? t.slice(0, 300) + '…' : t}`);
  await callPage.screenshot({ path: path.join(opts.out, `browser-${mode}-failed.png`), fullPage: true }).catch(() => {});
}
if (context) await context.close().catch(() => {});
await stopServer();
if (status === 1) {
  const logFile = path.join(tmp, 'voiceagent.log');
  if (fs.existsSync(logFile)) process.stdout.write(fs.readFileSync(logFile, 'utf8').replace(/^/gm, '  voiceagent| '));
}
if (!opts.keep) fs.rmSync(tmp, { recursive: true, force: true });
const passed = results.filter((r) => r.ok).length;
log(`${mode}: ${passed} passed, ${results.length - passed} failed${status === SKIP ? ' (skipped)' : ''}`);
process.exit(status);
