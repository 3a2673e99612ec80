// The TURN credentials voiceagent hands out (RFC 9725 §4.6 Link headers,
// coturn's REST API form) against a real coturn, from a real browser:
//
//  1. coturn (use-auth-secret) and voiceagent (--turn-secret-file, the same
//     secret, --turn-ttl 8, the echo template of tests/app/pipelines) on
//     127.0.0.1;
//  2. headless Chromium takes the ICE servers from OPTIONS /whip, gathers
//     relay candidates only (iceTransportPolicy 'relay'), calls, hears its
//     own audio come back and checks that the pair in use is relayed;
//     DELETE ends the call;
//  3. once those credentials have expired, the same ones get no relay
//     candidate (coturn answers the Allocate with 401) and the call cannot
//     connect;
//  4. the secret is in no HTTP response and not in the server's output.
//
//   node test-turn-relay.mjs [--keep]   (--keep: leave the logs in the temp dir)
//
// Environment: VOICEAGENT_BIN, VOICEAGENT_SOURCE_DIR, TURNSERVER (default
// turnserver), CHROMIUM (default /usr/bin/chromium), BROWSER_TEST_MODULES
// (where node_modules is, set by run-turn-test). Exit 0 pass, 1 fail.
// SPDX-License-Identifier: LGPL-2.1-or-later

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { launchChromium } from '../browser/lib.mjs';


const { values: opts } = parseArgs({
  options: {
    keep: { type: 'boolean', default: false },
  },
});

const TTL_S = 8;
const TOKEN = 'turn-relay-caller-token';
const REALM = 'voiceagent.test';
// Random per run, so finding it anywhere means it leaked from this run.
const SECRET = `turn-relay-secret-${crypto.randomBytes(12).toString('hex')}`;

const t0 = Date.now();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'voiceagent-turn-relay-'));
const results = [];
const responses = []; // every HTTP response the test sees: { what, text }
const procs = {}; // name -> { child, log }

function log(msg) {
  console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${msg}`);
}

// A failed check ends the test unless it is soft: then the test goes on and
// fails at the end, so one run reports every check it can.
function check(name, ok, detail = '', { soft = false } = {}) {
  results.push({ name, ok: !!ok });
  log(`${ok ? 'ok    ' : 'FAIL  '} ${name}${detail ? ': ' + detail : ''}`);
  if (!ok && !soft) throw new Error(`check failed: ${name}${detail ? ': ' + detail : ''}`);
}

function assertRunning(what) {
  for (const [name, p] of Object.entries(procs))
    if (p.child.exitCode !== null || p.child.signalCode !== null)
      throw new Error(`${name} exited (${p.child.exitCode ?? p.child.signalCode}) while waiting for ${what}`);
}

async function until(what, fn, timeoutMs, intervalMs = 100) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    assertRunning(what);
    await sleep(intervalMs);
  }
}

function startProcess(name, bin, args, env = process.env) {
  const logFile = path.join(tmp, `${name}.log`);
  const out = fs.openSync(logFile, 'w');
  log(`starting ${bin} ${args.join(' ').replaceAll(SECRET, '<secret>')}`);
  const child = spawn(bin, args, { env, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  child.on('error', (e) => log(`${name}: ${e.message}`));
  procs[name] = { child, log: logFile };
  return procs[name];
}

// Returns how it ended: an exit code or a signal name.
async function stopProcess(name) {
  const p = procs[name];
  if (!p) return null;
  delete procs[name];
  const { child } = p;
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode;
  const exited = new Promise((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig)));
  for (const sig of ['SIGTERM', 'SIGTERM', 'SIGKILL']) {
    child.kill(sig);
    const how = await Promise.race([exited, sleep(10000).then(() => null)]);
    if (how !== null) {
      log(`${name} (pid ${child.pid}) exited: ${how}`);
      return how;
    }
  }
  return null;
}

function readLog(name) {
  try {
    return fs.readFileSync(path.join(tmp, `${name}.log`), 'utf8');
  } catch {
    return '';
  }
}

/* ---- The fake microphone: a 440 Hz tone, 16-bit PCM WAV (Chromium loops it) ---- */

function makeToneWav() {
  const rate = 48000;
  const n = rate; // 1 s
  const buf = Buffer.alloc(44 + n * 2);
  buf.write('RIFF', 0);
  buf.writeUInt32LE(36 + n * 2, 4);
  buf.write('WAVEfmt ', 8);
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20); // PCM
  buf.writeUInt16LE(1, 22); // mono
  buf.writeUInt32LE(rate, 24);
  buf.writeUInt32LE(rate * 2, 28);
  buf.writeUInt16LE(2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write('data', 36);
  buf.writeUInt32LE(n * 2, 40);
  for (let i = 0; i < n; i++) buf.writeInt16LE(Math.round(10000 * Math.sin((2 * Math.PI * 440 * i) / rate)), 44 + i * 2);
  const wav = path.join(tmp, 'tone.wav');
  fs.writeFileSync(wav, buf);
  return wav;
}

/* ---- coturn ---- */

// A port free on 127.0.0.1 for both UDP and TCP (coturn listens on both);
// another process may still take it before coturn does, hence the retries.
async function freePort() {
  for (;;) {
    const udp = dgram.createSocket('udp4');
    await new Promise((resolve, reject) => udp.once('error', reject).bind(0, '127.0.0.1', resolve));
    const port = udp.address().port;
    const tcp = net.createServer();
    const ok = await new Promise((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, '127.0.0.1', () => resolve(true));
    });
    udp.close();
    if (ok) {
      await new Promise((resolve) => tcp.close(resolve));
      return port;
    }
  }
}

// A STUN Binding request (RFC 8489); true when a Binding success response
// with the same transaction id comes back within timeoutMs.
function stunBinding(port, timeoutMs) {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    const req = Buffer.alloc(20);
    req.writeUInt16BE(0x0001, 0);
    req.writeUInt16BE(0, 2);
    req.writeUInt32BE(0x2112a442, 4);
    crypto.randomBytes(12).copy(req, 8);
    const timer = setTimeout(() => finish(false), timeoutMs);
    function finish(ok) {
      clearTimeout(timer);
      sock.close();
      resolve(ok);
    }
    sock.on('error', () => finish(false));
    sock.on('message', (msg) => {
      if (msg.length >= 20 && msg.readUInt16BE(0) === 0x0101 && msg.subarray(8, 20).equals(req.subarray(8, 20)))
        finish(true);
    });
    sock.send(req, port, '127.0.0.1');
  });
}

// The address coturn relays from. Not 127.0.0.1 when the host has another
// address: libnice pins each host-candidate socket to its interface
// (IP_UNICAST_IF), so voiceagent's packets to 127.0.0.1 would leave on eth0
// and be lost. Only on a host with loopback alone does libnice (and so
// the relay) use 127.0.0.1.
function relayAddress() {
  for (const addrs of Object.values(os.networkInterfaces()))
    for (const a of addrs || [])
      if (a.family === 'IPv4' && !a.internal) return a.address;
  return '127.0.0.1';
}

async function startCoturn() {
  const bin = process.env.TURNSERVER || 'turnserver';
  const relayIp = relayAddress();
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const p = startProcess('turnserver', bin, [
      '-n', // no configuration file: everything is on this command line
      `--listening-port=${port}`, '--listening-ip=127.0.0.1', `--relay-ip=${relayIp}`,
      '--use-auth-secret', `--static-auth-secret=${SECRET}`, `--realm=${REALM}`,
      // The relay's peer (voiceagent) is on this host: coturn refuses
      // loopback peers unless told (needed when relayAddress() is loopback).
      '--allow-loopback-peers',
      '--no-tls', '--no-dtls', '--no-cli', '--fingerprint', '--verbose',
      '--log-file=stdout', '--simple-log', `--userdb=${path.join(tmp, 'turndb')}`,
      `--pidfile=${path.join(tmp, 'turnserver.pid')}`,
    ]);
    const end = Date.now() + 10000;
    while (Date.now() < end && p.child.exitCode === null && p.child.signalCode === null) {
      if (await stunBinding(port, 300)) {
        log(`coturn answers STUN on 127.0.0.1:${port} (udp)`);
        return port;
      }
    }
    log(`coturn did not come up on port ${port} (attempt ${attempt}):`);
    process.stdout.write(readLog('turnserver').replace(/^/gm, '  turnserver| '));
    await stopProcess('turnserver');
  }
  throw new Error('coturn did not start (see its output above)');
}

/* ---- voiceagent ---- */

async function startVoiceagent(turnPort) {
  const src = process.env.VOICEAGENT_SOURCE_DIR || path.resolve(import.meta.dirname, '../..');
  const bin = process.env.VOICEAGENT_BIN;
  if (!bin || !fs.existsSync(bin)) throw new Error(`VOICEAGENT_BIN is not set or missing (${bin})`);
  const secretFile = path.join(tmp, 'turn-secret');
  fs.writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 });
  const portFile = path.join(tmp, 'port');
  const env = { ...process.env };
  for (const k of ['DEEPGRAM_URL', 'ELEVENLABS_URL', 'LLM_URL', 'OPENAI_API_KEY', 'VOICEAGENT_TURN',
    'VOICEAGENT_TURN_SECRET', 'VOICEAGENT_STUN'])
    delete env[k];
  // The echo template uses no service: keys keep the emulator from starting.
  env.DEEPGRAM_API_KEY = 'unused';
  env.ELEVENLABS_API_KEY = 'unused';
  env.LLM_API_KEY = 'unused';
  startProcess('voiceagent', bin, [
    '--host', '127.0.0.1', '--port', '0', '--port-file', portFile,
    '--pipelines', path.join(src, 'tests', 'app', 'pipelines'), '--database', path.join(tmp, 'calls.db'),
    '--token', TOKEN, '--drain-timeout', '2',
    '--turn-server', `turn:127.0.0.1:${turnPort}?transport=udp`, '--turn-secret-file', secretFile,
    '--turn-ttl', String(TTL_S),
  ], env);
  const port = await until('voiceagent to write its port file', () => {
    try {
      return parseInt(fs.readFileSync(portFile, 'utf8'), 10) || 0;
    } catch {
      return 0;
    }
  }, 60000, 50).catch((e) => {
    process.stdout.write(readLog('voiceagent').replace(/^/gm, '  voiceagent| '));
    throw e;
  });
  return `http://127.0.0.1:${port}`;
}

/* ---- The browser ---- */

let context = null;
let page = null;

async function launch(wav) {
  context = await launchChromium(path.join(tmp, 'profile'), wav);
  log(`chromium ${context.browser()?.version() ?? ''} up`);
}

// One HTTP exchange from the page, kept for the secret check.
async function http(what, method, url, options = {}) {
  const r = await page.evaluate(([m, u, o]) => window.turnTest.http(m, u, o), [method, url, options]);
  responses.push({ what, text: `HTTP ${r.status}\n${r.headers.map(([k, v]) => `${k}: ${v}`).join('\n')}\n\n${r.body}` });
  r.header = (name) => {
    const h = r.headers.find(([k]) => k.toLowerCase() === name.toLowerCase());
    return h ? h[1] : null;
  };
  return r;
}

function candidates(sdp) {
  return sdp.split(/\r?\n/).filter((l) => l.startsWith('a=candidate:'));
}

function typeOf(candidateLine) {
  const m = / typ (\S+)/.exec(candidateLine);
  return m ? m[1] : '?';
}

/* ---- The test ---- */

async function run() {
  const wav = makeToneWav();
  const turnPort = await startCoturn();
  const base = await startVoiceagent(turnPort);
  log(`voiceagent at ${base}`);
  await launch(wav);

  page = context.pages()[0] || (await context.newPage());
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') log(`page console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => log(`page error: ${e.message}`));
  // Everything the browser receives, whatever asked for it.
  const pageResponses = [];
  page.on('response', (r) => pageResponses.push((async () => {
    const headers = await r.allHeaders().catch(() => ({}));
    const body = await r.text().catch(() => '');
    return { what: `browser: ${r.request().method()} ${r.url()}`,
      text: `HTTP ${r.status()}\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\n')}\n\n${body}` };
  })()));

  // The page at the server's origin (served by the test, not the server):
  // its fetches to the server are same-origin.
  const html = fs.readFileSync(path.join(import.meta.dirname, 'turn-relay.html'), 'utf8');
  await page.route(`${base}/turn-relay.html`, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: html }));
  await page.goto(`${base}/turn-relay.html`);
  await page.click('#start'); // a user activation: the page may play audio

  // A caller without the token gets no TURN credentials.
  const anon = await http('OPTIONS /whip without a token', 'OPTIONS', `${base}/whip`);
  check('OPTIONS /whip without the token carries no TURN credentials',
    !/credential=/.test(anon.header('link') || ''), `HTTP ${anon.status}, Link: ${anon.header('link')}`, { soft: true });

  /* 1. The credentials of OPTIONS /whip get a relay and the call connects. */
  const options = await http('OPTIONS /whip', 'OPTIONS', `${base}/whip`, { token: TOKEN });
  const optionsAt = Date.now();
  const link = options.header('link') || '';
  check('OPTIONS /whip with the token: 204 with Link headers', options.status === 204 && link !== '',
    `HTTP ${options.status}, Link: ${link}`);
  const iceServers = await page.evaluate((l) => window.turnTest.iceServers(l), link);
  const turn = iceServers.filter((s) => /^turns?:/.test(s.urls));
  check('one TURN server, the configured URL, with a username and credential',
    turn.length === 1 && turn[0].urls === `turn:127.0.0.1:${turnPort}?transport=udp` && turn[0].username && turn[0].credential,
    JSON.stringify(iceServers));
  const [, expiryText, id] = /^(\d+):(.+)$/.exec(turn[0].username) || [];
  const expiry = parseInt(expiryText, 10);
  const now = Date.now() / 1000;
  check('username is <unix expiry>:<id>, expiring in --turn-ttl seconds',
    id && Math.abs(expiry - (now + TTL_S)) <= 3, `${turn[0].username}, now ${Math.floor(now)}`);
  const expected = crypto.createHmac('sha1', SECRET).update(turn[0].username).digest('base64');
  check('credential is base64(HMAC-SHA1(secret, username)) (coturn REST API)', turn[0].credential === expected,
    turn[0].credential);

  const first = await page.evaluate(([s, ms]) => window.turnTest.gather(s, ms), [iceServers, 15000]);
  const firstCands = candidates(first.sdp);
  log(`gathering ${first.complete ? 'complete' : 'NOT complete'} after ${first.ms} ms: ${firstCands.length} candidates`);
  for (const c of firstCands) log(`  offer ${c}`);
  for (const e of first.errors) log(`  icecandidateerror ${JSON.stringify(e)}`);
  check('ICE gathering completes', first.complete, `${first.ms} ms`);
  check('the offer has relay candidates, and only relay candidates',
    firstCands.length > 0 && firstCands.every((c) => typeOf(c) === 'relay'),
    firstCands.map(typeOf).join(' ') || 'none');

  const post = await http('POST /whip', 'POST', `${base}/whip`, { token: TOKEN, body: first.sdp, type: 'application/sdp' });
  const location = post.header('location');
  check('POST /whip: 201 with an answer and a Location', post.status === 201 && location && /^v=0/.test(post.body),
    `HTTP ${post.status}, Location ${location}${post.status === 201 ? '' : ', ' + post.body}`);
  check('the 201 carries TURN credentials too', /rel="ice-server"[^,]*credential="/.test(post.header('link') || ''),
    post.header('link') || '', { soft: true });
  for (const c of candidates(post.body)) log(`  answer ${c}`);
  await page.evaluate((sdp) => window.turnTest.answer(sdp), post.body);

  const state = await until('ICE to connect', async () => {
    const s = await page.evaluate(() => window.turnTest.state());
    return s && ['connected', 'completed'].includes(s.ice) ? s : null;
  }, 15000, 100);
  check('ICE connects through the relay', true, `${state.ice} ${((Date.now() - optionsAt) / 1000).toFixed(1)} s after OPTIONS`);
  const audio = await until('audio energy back from the echo agent', async () => {
    const s = await page.evaluate(() => window.turnTest.stats());
    return s.packets > 0 && s.energy > 0 && s.remotePeak > 0.005 ? s : null;
  }, 15000, 250).catch(async (e) => {
    log(`stats: ${JSON.stringify(await page.evaluate(() => window.turnTest.stats()))}`);
    throw e;
  });
  check('the echo comes back: RTP packets with audio energy (getStats)', audio.packets > 0 && audio.energy > 0,
    `${audio.packets} packets, totalAudioEnergy ${audio.energy.toExponential(2)}`);
  check('the page hears it (WebAudio analyser on the remote track)', audio.remotePeak > 0.005,
    `peak RMS ${audio.remotePeak.toFixed(3)}`);
  const pair = audio.pair;
  check('the selected candidate pair\'s local candidate is a relay (getStats)',
    pair && pair.local.type === 'relay', JSON.stringify(pair));
  log(`selected pair: local ${pair.local.type} ${pair.local.address}:${pair.local.port} (${pair.local.relayProtocol} to ${pair.local.url}), ` +
    `remote ${pair.remote.type} ${pair.remote.address}:${pair.remote.port}; ${((Date.now() - optionsAt) / 1000).toFixed(1)} s after OPTIONS`);

  const del = await http('DELETE the call', 'DELETE', location, {});
  check('DELETE of the Location (verbatim) ends the call', del.status >= 200 && del.status < 300, `HTTP ${del.status}`);
  await page.evaluate(() => window.turnTest.close());
  const firstUser = turn[0].username;

  /* 2. The same credentials, expired: no relay, no call. */
  const waitMs = (expiry + 2) * 1000 - Date.now();
  log(`waiting ${(waitMs / 1000).toFixed(1)} s for the credentials to expire (at ${expiry})`);
  if (waitMs > 0) await sleep(waitMs);
  const second = await page.evaluate(([s, ms]) => window.turnTest.gather(s, ms), [iceServers, 30000]);
  const secondCands = candidates(second.sdp);
  log(`gathering with the expired credentials ${second.complete ? 'complete' : 'NOT complete'} after ${second.ms} ms: ` +
    `${secondCands.length} candidates`);
  for (const c of secondCands) log(`  offer ${c}`);
  for (const e of second.errors) log(`  icecandidateerror ${JSON.stringify(e)}`);
  check('ICE gathering with the expired credentials completes', second.complete, `${second.ms} ms`);
  check('the expired credentials get no relay candidate', !secondCands.some((c) => typeOf(c) === 'relay'),
    secondCands.map(typeOf).join(' ') || 'no candidates');
  check('Chromium reports coturn\'s 401 (icecandidateerror)', second.errors.some((e) => e.errorCode === 401),
    JSON.stringify(second.errors));

  const post2 = await http('POST /whip (expired TURN credentials)', 'POST', `${base}/whip`,
    { token: TOKEN, body: second.sdp, type: 'application/sdp' });
  check('POST /whip of that offer is answered', post2.status === 201, `HTTP ${post2.status}`);
  await page.evaluate((sdp) => window.turnTest.answer(sdp), post2.body);
  await sleep(5000);
  const state2 = await page.evaluate(() => window.turnTest.state());
  check('the call cannot connect', !['connected', 'completed'].includes(state2.ice) && state2.connection !== 'connected',
    `5 s after the answer: ice ${state2.ice}, connection ${state2.connection}`);
  const del2 = await http('DELETE the second call', 'DELETE', post2.header('location'), {});
  check('DELETE ends the second call', del2.status >= 200 && del2.status < 300, `HTTP ${del2.status}`, { soft: true });
  await page.evaluate(() => window.turnTest.close());

  /* 3. What coturn says. */
  await sleep(500);
  // coturn 4.6 at --verbose: "... user <EXPIRY:ID>: incoming packet
  // ALLOCATE processed, success", and for a stale username "... user
  // <EXPIRY:ID>: incoming packet message processed, error 401: Unauthorized",
  // after "check_stun_auth: Cannot find credentials of user <EXPIRY:ID>"
  // (the 401s with user <> answer the usual first, unauthenticated Allocate).
  const ofUser = readLog('turnserver').split('\n').filter((l) => l.includes(`user <${firstUser}>`));
  const allocated = ofUser.filter((l) => /ALLOCATE processed, success/.test(l));
  const refused = ofUser.filter((l) => /error 401|Cannot find credentials/.test(l));
  for (const l of [...allocated, ...refused]) log(`  coturn| ${l.trim()}`);
  check('coturn logs the allocations with the fresh credentials', allocated.length > 0, `${allocated.length} lines`);
  // Written when an allocation ends (the page closed its peer connection):
  // "peer usage: realm=<…>, username=<EXPIRY:ID>, rp=N, rb=N, sp=N, sb=N",
  // packets received from and sent to the peer (voiceagent).
  let rp = 0, sp = 0;
  for (const l of ofUser.length ? readLog('turnserver').split('\n') : []) {
    const m = /peer usage: .*username=<([^>]*)>, rp=(\d+), rb=\d+, sp=(\d+)/.exec(l);
    if (m && m[1] === firstUser) {
      log(`  coturn| ${l.trim()}`);
      rp += parseInt(m[2], 10);
      sp += parseInt(m[3], 10);
    }
  }
  check('coturn relayed the first call\'s media both ways (its peer usage)', rp > 0 && sp > 0,
    `${rp} packets from voiceagent, ${sp} to it`);
  check('coturn logs 401 for the same username once expired', refused.length > 0, `${refused.length} lines`);

  /* 4. The secret went nowhere. */
  for (const r of await Promise.all(pageResponses)) responses.push(r);
  const leaks = responses.filter((r) => r.text.includes(SECRET)).map((r) => r.what);
  check(`no HTTP response carries the secret (${responses.length} responses)`, leaks.length === 0, leaks.join('; '));
}

let status = 0;
try {
  await run();
  if (results.some((r) => !r.ok)) status = 1;
} catch (e) {
  results.push({ name: 'the test ran to its end', ok: false });
  log(`error: ${e.stack || e}`);
  status = 1;
}
if (context) await context.close().catch(() => {});
const serverStarted = 'voiceagent' in procs;
const serverExit = await stopProcess('voiceagent');
await stopProcess('turnserver');
// After the run, so a failed one reports these too.
function late(name, ok, detail) {
  results.push({ name, ok });
  log(`${ok ? 'ok    ' : 'FAIL  '} ${name}${detail ? ': ' + detail : ''}`);
  if (!ok) status = 1;
}
if (serverStarted) {
  // Under -Dsanitize=true, LeakSanitizer's findings make the exit non-zero.
  late('voiceagent exits cleanly on SIGTERM', serverExit === 0, `exit ${serverExit}`);
  late('the secret is not in voiceagent\'s output', !readLog('voiceagent').includes(SECRET));
}
if (status === 1) {
  for (const name of ['turnserver', 'voiceagent'])
    process.stdout.write(readLog(name).replace(/^/gm, `  ${name}| `));
}
if (!opts.keep) fs.rmSync(tmp, { recursive: true, force: true });
else log(`kept ${tmp}`);
const passed = results.filter((r) => r.ok).length;
log(`turn-relay: ${passed} passed, ${results.length - passed} failed`);
process.exit(status);
