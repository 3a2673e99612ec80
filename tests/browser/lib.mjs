// What the real-browser tests share (test-demo-page.mjs,
// test-gateway-call.mjs): checks and waits, the processes a test starts
// (each stopped at the end, even on failure), the fake microphone's WAV,
// Chromium through playwright-core, and what a test reads from the demo
// page (window.voiceagent, getStats).
// SPDX-License-Identifier: LGPL-2.1-or-later

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRequire } from 'node:module';

export { sleep };

// Exit status of a test that cannot run here (run-browser-test turns it
// into a failure under strict).
export const SKIP = 77;
export class Skip extends Error {}

// run-browser-test installs playwright-core into the build dir; by hand,
// `npm ci` in tests/browser works too.
async function playwright() {
  const dir = process.env.BROWSER_TEST_MODULES;
  return dir ? createRequire(path.join(dir, 'package.json'))('playwright-core') : import('playwright-core');
}

// Headless Chromium (CHROMIUM, default /usr/bin/chromium) with a fake
// microphone playing @wav, allowed to call a server on this machine.
export async function launchChromium(profileDir, wav) {
  const { chromium } = await playwright();
  return chromium.launchPersistentContext(profileDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
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
}

export const adminToken = process.env.VOICEAGENT_ADMIN_TOKEN || 'browser-test-admin';

export function sourceDir() {
  return process.env.VOICEAGENT_SOURCE_DIR || path.resolve(import.meta.dirname, '../..');
}

// The environment of a voiceagent the test starts: no real service keys
// from the caller's shell.
export function serverEnv(extra = {}) {
  const env = { ...process.env };
  for (const k of ['DEEPGRAM_API_KEY', 'DEEPGRAM_URL', 'ELEVENLABS_API_KEY', 'ELEVENLABS_URL',
    'LLM_API_KEY', 'LLM_URL', 'OPENAI_API_KEY'])
    delete env[k];
  // The operator token lets the test read /calls, /metrics.
  env.VOICEAGENT_ADMIN_TOKEN = adminToken;
  return Object.assign(env, extra);
}

// GET @path of a voiceagent as its operator; JSON, or the text when
// @text.
// Starts the built voiceagent ($VOICEAGENT_BIN) on 127.0.0.1 with the
// templates in `pipelines` and a database in the harness's scratch folder.
// With `agent`, the template runs the real elements on the local emulator:
// a template the server refuses for a missing element is a Skip there (it
// cannot run on this machine), and the server's log is shown either way.
export async function startVoiceagent(h, { pipelines, env, agent = true }) {
  const bin = process.env.VOICEAGENT_BIN;
  if (!bin || !fs.existsSync(bin)) throw new Error(`VOICEAGENT_BIN is not set or missing (${bin})`);
  const args = ['--host', '127.0.0.1', '--pipelines', pipelines,
    '--database', path.join(h.tmp, 'calls.db'), '--drain-timeout', '2'];
  if (agent && process.env.VOICEAGENT_EMULATOR) args.push('--emulator', process.env.VOICEAGENT_EMULATOR);
  try {
    return await h.startListening('voiceagent', bin, args, { env });
  } catch (e) {
    const failed = h.procs.find((p) => p.name === 'voiceagent');
    if (failed) h.dumpLog(failed);
    const text = failed && fs.existsSync(failed.logPath) ? fs.readFileSync(failed.logPath, 'utf8') : '';
    if (agent && /\.pipeline:\d+: no (element|property) "/.test(text))
      throw new Skip('voiceagent refuses the full agent template (an element is missing; see its output above)');
    throw e;
  }
}

export async function adminGet(base, p, { text = false } = {}) {
  const resp = await fetch(`${base}${p}`, { headers: { Authorization: `Bearer ${adminToken}` } });
  if (!resp.ok) throw new Error(`GET ${base}${p}: HTTP ${resp.status}`);
  return text ? resp.text() : resp.json();
}

export const listCalls = (base) => adminGet(base, '/calls');

// A free TCP port on loopback (for a program that cannot pick its own).
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function tcpAnswers(port) {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

/* ---- One test run ---- */

export class Harness {
  constructor(name, { keep = false } = {}) {
    this.name = name;
    this.keep = keep;
    this.t0 = Date.now();
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), `voiceagent-browser-${name}-`));
    this.results = [];
    this.procs = []; // every process started, in order
    this.context = null;
    // A test killed by meson (timeout) still stops what it started.
    for (const sig of ['SIGTERM', 'SIGINT']) {
      process.once(sig, () => {
        this.log(`${sig}: stopping every process started`);
        for (const p of this.procs) if (p.running) p.child.kill('SIGTERM');
        setTimeout(() => {
          for (const p of this.procs) if (p.running) p.child.kill('SIGKILL');
          process.exit(1);
        }, 3000).unref();
      });
    }
  }

  log(msg) {
    console.log(`[${((Date.now() - this.t0) / 1000).toFixed(1).padStart(5)} s] ${msg}`);
  }

  // A failed check ends the test unless it is soft: then the test goes on
  // and fails at the end, so one run reports every check it can.
  check(name, ok, detail = '', { soft = false } = {}) {
    this.results.push({ name, ok: !!ok });
    this.log(`${ok ? 'ok    ' : 'FAIL  '} ${name}${detail ? ': ' + detail : ''}`);
    if (!ok && !soft) throw new Error(`check failed: ${name}${detail ? ': ' + detail : ''}`);
  }

  get failed() {
    return this.results.some((r) => !r.ok);
  }

  // Polls @fn until it returns something truthy; fails early when a
  // process the test relies on exits.
  async until(what, fn, timeoutMs, intervalMs = 100) {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const last = await fn();
      if (last) return last;
      if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      const dead = this.procs.find((p) => p.essential && !p.running);
      if (dead) throw new Error(`${dead.name} exited (${dead.exit}) while waiting for ${what}`);
      await sleep(intervalMs);
    }
  }

  /* ---- Processes ---- */

  // Starts @bin with @args, its output in TMP/NAME.log. An essential
  // process exiting fails the waits (until()); stop() or kill() it first.
  start(name, bin, args, { env = process.env, essential = true } = {}) {
    const logPath = path.join(this.tmp, `${name}.log`);
    const out = fs.openSync(logPath, 'w');
    this.log(`starting ${name}: ${bin} ${args.join(' ')}`);
    const child = spawn(bin, args, { env, stdio: ['ignore', out, out] });
    fs.closeSync(out);
    const p = { name, child, logPath, essential, running: true, exit: null };
    p.exited = new Promise((resolve) => child.once('exit', (code, sig) => {
      p.running = false;
      p.exit = code ?? sig;
      if (p.essential) this.log(`${name} (pid ${child.pid}) exited: ${p.exit}`);
      resolve(p.exit);
    }));
    child.once('error', (e) => this.log(`${name}: ${e.message}`));
    this.procs.push(p);
    return p;
  }

  // The first line of @file once @p writes it (a port, a URL).
  async waitFile(p, file, timeoutMs = 60000) {
    const end = Date.now() + timeoutMs;
    for (;;) {
      let text = '';
      try {
        text = fs.readFileSync(file, 'utf8').trim();
      } catch {}
      if (text) return text.split('\n')[0];
      if (!p.running)
        throw new Error(`${p.name} exited with ${p.exit} before writing ${path.basename(file)}`);
      if (Date.now() > end) throw new Error(`${p.name} did not write ${path.basename(file)} within ${timeoutMs / 1000} s`);
      await sleep(50);
    }
  }

  // A program started with --port 0 --port-file F (voiceagent, the
  // emulator); returns the process with .url, its http://127.0.0.1:PORT.
  async startListening(name, bin, args, opts = {}) {
    const portFile = path.join(this.tmp, `${name}.port`);
    const p = this.start(name, bin, ['--port', '0', '--port-file', portFile, ...args], opts);
    p.port = parseInt(await this.waitFile(p, portFile, opts.timeoutMs), 10);
    p.url = `http://127.0.0.1:${p.port}`;
    return p;
  }

  // redis-server on a free loopback port, in memory only; .url is its
  // redis:// URL.
  async startRedis() {
    const port = await freePort();
    const p = this.start('redis', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1',
      '--save', '', '--appendonly', 'no']);
    await this.until('redis-server to answer', () => tcpAnswers(port), 10000, 50);
    p.url = `redis://127.0.0.1:${port}`;
    return p;
  }

  // SIGTERM, a second one after @graceMs (a voiceagent then ends its calls
  // at once), SIGKILL after another @graceMs.
  async stop(p, graceMs = 10000) {
    if (!p || !p.running) return;
    p.essential = false;
    p.child.kill('SIGTERM');
    let how = await Promise.race([p.exited, sleep(graceMs).then(() => null)]);
    if (how === null) {
      p.child.kill('SIGTERM');
      how = await Promise.race([p.exited, sleep(graceMs).then(() => null)]);
    }
    if (how === null) {
      this.log(`${p.name} did not exit on SIGTERM: SIGKILL`);
      p.child.kill('SIGKILL');
      how = await p.exited;
    }
    this.log(`${p.name} stopped: ${how}`);
  }

  // Kills @p with @sig and waits for it: an exit the test asked for.
  async kill(p, sig = 'SIGKILL') {
    p.essential = false;
    p.child.kill(sig);
    return p.exited;
  }

  // Stops every process still running, the last started first.
  async stopAll() {
    if (this.context) await this.context.close().catch(() => {});
    this.context = null;
    for (const p of [...this.procs].reverse()) await this.stop(p);
  }

  dumpLog(p, lastLines = 0) {
    if (!fs.existsSync(p.logPath)) return;
    let lines = fs.readFileSync(p.logPath, 'utf8').split('\n');
    if (lastLines && lines.length > lastLines) lines = ['…', ...lines.slice(-lastLines)];
    process.stdout.write(lines.join('\n').replace(/^/gm, `  ${p.name}| `) + '\n');
  }

  /* ---- The fake microphone ---- */

  // espeak-ng speaking @text as the 16-bit PCM WAV Chromium wants, 48 kHz
  // mono, with silence after the speech so the VAD sees the turn end
  // before the file loops.
  speechWav(text) {
    const raw = path.join(this.tmp, 'espeak.wav');
    const wav = path.join(this.tmp, 'speech.wav');
    execFileSync('espeak-ng', ['-s', '150', '-w', raw, text]);
    execFileSync('sox', [raw, '-r', '48000', '-c', '1', '-b', '16', '-e', 'signed-integer', wav, 'pad', '0.3', '2.5']);
    return wav;
  }

  // A silent microphone (a call whose turns are typed).
  silenceWav() {
    const wav = path.join(this.tmp, 'silence.wav');
    execFileSync('sox', ['-n', '-r', '48000', '-c', '1', '-b', '16', '-e', 'signed-integer', wav, 'trim', '0', '1']);
    return wav;
  }

  /* ---- The browser ---- */

  async launch(wav) {
    this.context = await launchChromium(path.join(this.tmp, 'profile'), wav);
    this.log(`chromium ${this.context.browser()?.version() ?? ''} up`);
    return this.context;
  }

  watchPage(page, name) {
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') this.log(`${name} console.${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => this.log(`${name} page error: ${e.message}`));
  }

  // Runs the test @body: 0 when every check passed, 1 on a failed check
  // or an error, SKIP when it threw Skip.
  async outcome(body) {
    try {
      await body();
      return this.failed ? 1 : 0;
    } catch (e) {
      if (e instanceof Skip) {
        this.log(`SKIP: ${e.message}`);
        return SKIP;
      }
      this.log(`error: ${e.stack || e}`);
      return 1;
    }
  }

  // The end: stops everything, removes the temporary folder (unless
  // --keep), prints the tally and exits with @status.
  async finish(status) {
    await this.stopAll();
    if (this.keep) this.log(`kept ${this.tmp}`);
    else fs.rmSync(this.tmp, { recursive: true, force: true });
    const passed = this.results.filter((r) => r.ok).length;
    this.log(`${this.name}: ${passed} passed, ${this.results.length - passed} failed${status === SKIP ? ' (skipped)' : ''}`);
    process.exit(status);
  }
}

// Checks the tools the fake microphone needs.
export function requireTools(tools) {
  for (const tool of tools) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      throw new Error(`${tool} is not installed (scripts/setup installs it)`);
    }
  }
}

/* ---- What the page shows ---- */

// The page's inbound audio: {packets, energy} (getStats inbound-rtp).
export async function inboundAudio(page) {
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

// The texts the server sent on the data channel, oldest first.
export async function events(page) {
  return page.evaluate(() => window.voiceagent.events.filter((e) => e.dir === 'in').map((e) => e.text));
}

export function eventTypes(texts) {
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

// Logs what the server sent: enough to tell a page bug from a server that
// does not send an event yet.
export async function logEvents(h, page, skip = new Set()) {
  const got = (await events(page).catch(() => [])).filter((t) => !skip.has(t));
  h.log(`data channel events from the server, by type: ${JSON.stringify(eventTypes(got))}`);
  for (const t of got.slice(-15)) h.log(`  ← ${t.length > 300 ? t.slice(0, 300) + '…' : t}`);
}
