// Gateway mode with a real browser: Chromium (libwebrtc) calls through the
// demo page of a voiceagent front (--gateway), whose caller's peer
// connection Janus with janus.plugin.voiceagent holds; two workers run the
// call's pipeline on plain RTP (docs/deployment.md, "Gateway mode"). The
// worker serving the call is killed with SIGKILL mid-conversation: the
// page's RTCPeerConnection must stay connected (no new WHIP POST, no
// state change), the next turn must be answered by the other worker with
// the history intact, and the agent's audio must keep arriving. The page
// is the demo page as it is: nothing in it handles a failover.
//
//   node test-gateway-call.mjs [--out DIR] [--keep]
//
// The turns are typed in the page's text box (data-channel text, as the
// janus-gateway test sends them), so the microphone plays silence: no
// utterance of its own can come between the two turns. The emulator runs
// the scripted recognizer and the tone synthesizer (cheap).
//
// Environment: VOICEAGENT_BIN, VOICEAGENT_EMULATOR, VOICEAGENT_JANUS_RUNNER
// (voiceagent-janus-runner) and what it needs (VOICEAGENT_JANUS,
// VOICEAGENT_JANUS_HTTP, VOICEAGENT_JANUS_PLUGIN), CHROMIUM,
// BROWSER_TEST_MODULES; meson sets them. Exit 0 pass, 1 fail, 77 skip
// (this machine cannot run Janus; run-browser-test turns that into a
// failure under strict).
// SPDX-License-Identifier: LGPL-2.1-or-later

import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  Harness, Skip, SKIP, sleep, serverEnv, adminToken, adminGet, listCalls, requireTools, inboundAudio, logEvents,
} from './lib.mjs';

const { values: opts } = parseArgs({
  options: {
    out: { type: 'string', default: process.cwd() },
    keep: { type: 'boolean', default: false },
  },
});

const TOKEN = 'browser-gateway-token'; // the callers' token, the front's
const CLUSTER_TOKEN = 'browser-gateway-cluster-token';
const EMULATOR_KEY = 'local-emulator-key';
const REPLY_MS = 30000;
const TURN_1 = 'My favourite colour is green.';
const TURN_2 = 'What did I say?';

const h = new Harness('gateway', { keep: opts.keep });
const log = (m) => h.log(m);
const check = (...a) => h.check(...a);
const until = (...a) => h.until(...a);
let callPage = null;
let front = null;
const workers = [];

function need(name) {
  const v = process.env[name];
  if (!v || !fs.existsSync(v)) throw new Error(`${name} is not set or missing (${v}): run through meson test`);
  return v;
}

/* ---- The cluster: emulator, redis-server, Janus, workers, front ---- */

async function startJanus() {
  const runner = need('VOICEAGENT_JANUS_RUNNER');
  const urlFile = path.join(h.tmp, 'janus.url');
  const p = h.start('janus', runner, ['--url-file', urlFile, '--pid-file', path.join(h.tmp, 'janus.pid'),
    '--event-loops', '2']);
  try {
    return await h.waitFile(p, urlFile, 30000);
  } catch (e) {
    // 77: this machine cannot run Janus with our plugin (its reason is in
    // the output above).
    if (p.exit === SKIP) throw new Skip('voiceagent-janus-runner cannot run Janus here');
    throw e;
  }
}

// A voiceagent with --redis and every service on the emulator, as the
// janus-gateway test starts them.
async function startInstance(name, emulator, redis, extra = [], env = {}) {
  const ws = emulator.url.replace(/^http/, 'ws');
  return h.startListening(name, need('VOICEAGENT_BIN'), [
    '--redis', redis, '--database', path.join(h.tmp, `${name}.db`),
    '--deepgram-url', `${ws}/v1/listen`, '--elevenlabs-url', ws, '--llm-url', `${emulator.url}/v1`,
    '--drain-timeout', '1', ...extra,
  ], {
    env: serverEnv({
      VOICEAGENT_CLUSTER_TOKEN: CLUSTER_TOKEN, DEEPGRAM_API_KEY: EMULATOR_KEY,
      ELEVENLABS_API_KEY: EMULATOR_KEY, LLM_API_KEY: EMULATOR_KEY, ...env,
    }),
  });
}

async function startCluster() {
  const emulator = await h.startListening('emulator', need('VOICEAGENT_EMULATOR'),
    ['--quiet', '--stt-engine', 'scripted', '--tts-engine', 'tone']);
  const redis = await h.startRedis();
  const janus = await startJanus();
  log(`emulator ${emulator.url}, redis ${redis.url}, janus ${janus}`);
  for (const n of [1, 2]) workers.push(await startInstance(`worker${n}`, emulator, redis.url));
  // GST_DEBUG: the front's lines on placing and moving calls, for a failure's log.
  front = await startInstance('front', emulator, redis.url, ['--gateway', janus],
    { VOICEAGENT_TOKEN: TOKEN, GST_DEBUG: 'voiceagent:4' });
  const ready = await until('the front to see 3 instances (GET /readyz)', async () => {
    const body = await adminGet(front.url, '/readyz', { text: true }).catch(() => '');
    return body.includes('"instances":3') ? body : null;
  }, 30000, 100);
  log(`front ${front.url}: ${ready.trim()}`);
}

// Which worker lists the call @id in its GET /calls, or null.
async function serving(id) {
  for (const w of workers) {
    if (!w.running) continue;
    const calls = await listCalls(w.url).catch(() => []);
    if (calls.some((c) => c.id === id)) return w;
  }
  return null;
}

// The front's status for the call @id (GET /calls/{id} as operator): 204
// while it lives, 404 once ended. (The front's GET /calls lists only
// direct-mode calls, so it cannot tell.)
async function probe(id) {
  const resp = await fetch(`${front.url}/calls/${id}`, { headers: { Authorization: `Bearer ${adminToken}` } });
  return resp.status;
}

/* ---- The page ---- */

// Every RTCPeerConnection the page makes and each connectionState it
// goes through, recorded from outside the page's code.
function recordPeerConnections() {
  const Native = window.RTCPeerConnection;
  const log = (window.__pcLog = []);
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      const n = log.filter((e) => e.state === 'new').length + 1;
      const t0 = performance.now();
      log.push({ pc: n, state: 'new', ms: 0 });
      this.addEventListener('connectionstatechange', () =>
        log.push({ pc: n, state: this.connectionState, ms: Math.round(performance.now() - t0) }));
    }
  };
}

const pcLog = (page) => page.evaluate(() => window.__pcLog);

// The page's transport and inbound audio (getStats): whether ICE or DTLS
// noticed anything, and what the jitter buffer lost or concealed.
async function transport(page) {
  return page.evaluate(async () => {
    const out = {};
    for (const s of (await window.voiceagent.pc.getStats()).values()) {
      if (s.type === 'transport') {
        Object.assign(out, { dtls: s.dtlsState, ice: s.iceState, pairChanges: s.selectedCandidatePairChanges });
      } else if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        Object.assign(out, { lost: s.packetsLost, concealed: s.concealmentEvents });
      }
    }
    return out;
  });
}

// The server's events (parsed) the page got at or after @since (its
// Date.now()).
async function eventsSince(page, since) {
  const texts = await page.evaluate((t) =>
    window.voiceagent.events.filter((e) => e.dir === 'in' && e.t >= t).map((e) => e.text), since);
  return texts.map((t) => {
    try {
      return JSON.parse(t);
    } catch {
      return {};
    }
  });
}

async function typeText(page, text) {
  await page.fill('#text', text);
  await page.click('#send');
}

// Types @text and waits for the agent's whole reply to it (its pieces up
// to {"type":"agent","speaking":false}); returns its text.
async function ask(page, text) {
  const since = await page.evaluate(() => Date.now());
  const t = Date.now();
  await typeText(page, text);
  const reply = await until(`the agent's reply to "${text}"`, async () => {
    const got = await eventsSince(page, since);
    const pieces = got.filter((e) => e.type === 'transcript' && e.role === 'agent');
    const done = got.some((e) => e.type === 'agent' && e.speaking === false);
    return pieces.length && done ? pieces.map((e) => e.text).join(' ') : null;
  }, REPLY_MS, 100);
  log(`"${text}" → "${reply}" in ${Date.now() - t} ms`);
  return reply;
}

/* ---- The test ---- */

async function run() {
  requireTools(['sox', 'redis-server']);
  await startCluster();

  const context = await h.launch(h.silenceWav());
  const page = context.pages()[0] || (await context.newPage());
  callPage = page;
  h.watchPage(page, 'page');
  await page.addInitScript(recordPeerConnections);
  const posts = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && new URL(r.url()).pathname.startsWith('/whip')) posts.push(r.url());
  });

  const resp = await page.goto(`${front.url}/?token=${TOKEN}`);
  check('the front serves the demo page', resp.status() === 200 && (await page.title()) === 'voiceagent',
    `HTTP ${resp.status()}`);
  await page.click('#call');
  await page.waitForSelector('body[data-state="connected"]', { timeout: 30000 });
  const timeline = await page.evaluate(() => window.voiceagent.timeline);
  check('the call connects through Janus', true,
    timeline.map(([s, t]) => `${s}@${t - timeline[0][1]}ms`).join(' '));
  await page.waitForSelector('#send:not([disabled])', { timeout: 10000 });
  check('the data channel opens (Send enabled)', true);
  const callEvent = await until('the {"type":"call"} event', async () =>
    (await eventsSince(page, 0)).find((e) => e.type === 'call'), 15000);
  const id = callEvent.id;
  check('the data channel delivers {"type":"call"} (from the worker, through Janus)', typeof id === 'string',
    JSON.stringify(callEvent));
  check('the front has the call (GET /calls/{id}: 204)', (await probe(id)) === 204);

  const reply1 = await ask(page, TURN_1);
  check('turn 1: the agent answers', reply1.length > 0, JSON.stringify(reply1));
  const audio1 = await until('the agent\'s audio', async () => {
    const a = await inboundAudio(page);
    return a && a.packets > 0 && a.energy > 0 ? a : null;
  }, 20000, 250);
  check('the agent\'s audio arrives (getStats inbound-rtp, totalAudioEnergy > 0)', true,
    `${audio1.packets} packets, energy ${audio1.energy.toExponential(2)}`);

  const victim = await serving(id);
  check('one worker serves the call (its GET /calls lists it)', victim !== null, victim?.name ?? 'none');
  // Let the turn's state reach Redis (writes are coalesced over 50 ms).
  await sleep(300);
  const atKill = await inboundAudio(page);
  const before = await transport(page);
  const killed = Date.now();
  await h.kill(victim, 'SIGKILL');
  log(`SIGKILL ${victim.name} (pid ${victim.child.pid}) mid-call; ${atKill.packets} packets received so far`);

  // The front moves the call within a fraction of a second; what the
  // caller says meanwhile is lost as on a bad link, so the next turn comes
  // once it has moved, as a person's would.
  const metrics = await until('the front to move the call (voiceagent_gateway_failover_seconds_count 1)',
    async () => {
      const m = await adminGet(front.url, '/metrics', { text: true }).catch(() => '');
      return /^voiceagent_gateway_failover_seconds_count 1$/m.test(m) ? m : null;
    }, 15000, 50);
  const sum = /^voiceagent_gateway_failover_seconds_sum (\S+)$/m.exec(metrics);
  log(`failover seen ${Date.now() - killed} ms after the kill; the front measured ` +
    `${sum ? (1000 * Number(sum[1])).toFixed(1) : '?'} ms from the worker's death to the new worker hearing the caller`);

  const moved = await inboundAudio(page);
  const reply2 = await ask(page, TURN_2);
  check('turn 2 after the kill: the agent remembers turn 1', /green/i.test(reply2), JSON.stringify(reply2));
  log(`turn 2 answered ${Date.now() - killed} ms after the kill`);
  const heir = await serving(id);
  check('the other worker serves the call now', heir !== null && heir !== victim, heir?.name ?? 'none');
  // Counted from when the call had moved: the new worker's voice.
  const after = await until('the agent\'s audio after the kill', async () => {
    const a = await inboundAudio(page);
    return a && a.packets > moved.packets && a.energy > moved.energy ? a : null;
  }, 20000, 250).catch(() => null);
  check('the new worker\'s audio arrives (packetsReceived and totalAudioEnergy grow after the move)',
    after !== null, after ? `${atKill.packets} at the kill, ${moved.packets} once moved, ${after.packets} after turn 2`
      : JSON.stringify(await inboundAudio(page)), { soft: true });

  // The browser side of the failover.
  const pcs = await pcLog(page);
  const states = pcs.map((e) => `pc${e.pc}:${e.state}@${e.ms}ms`).join(' ');
  const firstConnected = pcs.findIndex((e) => e.state === 'connected');
  check('the page made one RTCPeerConnection', pcs.filter((e) => e.state === 'new').length === 1, states,
    { soft: true });
  check('its connectionState never left "connected"',
    firstConnected >= 0 && pcs.slice(firstConnected + 1).length === 0, states, { soft: true });
  check('the page sent one WHIP POST (no resume)', posts.length === 1, posts.join(' '), { soft: true });
  const now = await transport(page);
  check('ICE and DTLS did not notice (the same candidate pair, DTLS connected)',
    now.dtls === 'connected' && now.pairChanges === before.pairChanges,
    `before the kill ${JSON.stringify(before)}, after turn 2 ${JSON.stringify(now)}`, { soft: true });
  const timeline2 = await page.evaluate(() => window.voiceagent.timeline.map(([s]) => s));
  check('the page\'s state stayed "connected" (no reconnecting)',
    timeline2.at(-1) === 'connected' && !timeline2.includes('reconnecting'), timeline2.join(' '), { soft: true });

  await sleep(300);
  const shot = path.join(opts.out, 'browser-gateway.png');
  await page.screenshot({ path: shot, fullPage: true });
  log(`screenshot: ${shot}`);

  await page.click('#call');
  await page.waitForSelector('body[data-state="ended"]', { timeout: 5000 });
  check('Hang up ends the call on the page', true);
  const gone = await until('the front to end the call', async () => (await probe(id)) === 404, 15000, 200)
    .catch(() => false);
  check('the front ends the call (GET /calls/{id}: 404)', gone);
  const listed = await listCalls(front.url);
  check('the front\'s GET /calls is empty', listed.length === 0, JSON.stringify(listed));
  const error = await page.evaluate(() => document.getElementById('error').classList.contains('shown')
    ? document.querySelector('#error .text').textContent : '');
  check('the hang-up shows no error', !error, error, { soft: true });
  const left = await until('the worker to end the call', async () =>
    heir && heir.running && (await listCalls(heir.url)).length === 0, 15000, 200).catch(() => false);
  check('the worker ends it too (its GET /calls is empty)', left, '', { soft: true });

  // Everything else stops cleanly on SIGTERM, the worker that took the
  // call over included (under AddressSanitizer: no error, no leak).
  await h.context.close();
  h.context = null;
  const survivors = h.procs.filter((p) => p.running);
  for (const p of [...survivors].reverse()) await h.stop(p);
  const bad = survivors.filter((p) => p.exit !== 0).map((p) => `${p.name}: ${p.exit}`);
  check('every other process exits 0 on SIGTERM', bad.length === 0, bad.join(', '), { soft: true });
}

const status = await h.outcome(run);
if (status === 1 && callPage) {
  await logEvents(h, callPage);
  const pcs = await pcLog(callPage).catch(() => null);
  if (pcs) log(`peer connections: ${pcs.map((e) => `pc${e.pc}:${e.state}@${e.ms}ms`).join(' ')}`);
  await callPage.screenshot({ path: path.join(opts.out, 'browser-gateway-failed.png'), fullPage: true })
    .catch(() => {});
}
await h.stopAll();
if (status !== 0) for (const p of h.procs) if (p.name !== 'redis') h.dumpLog(p, 60);
await h.finish(status);
