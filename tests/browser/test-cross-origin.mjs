// voiceagent.js used from another site's page, as docs/demo-page.md says
// any page may: a page served by this test (not by voiceagent) imports the
// module from the voiceagent server and calls it with the client VAD on.
// The server allows that page's origin (--cors-origin), so the module,
// its vendored VAD files (scripts with crossorigin, onnxruntime's wasm by
// fetch), the WHIP POST, the session's headers (Location, the call token)
// and the hang-up's DELETE all pass Chromium's CORS checks. The same page
// from an origin the server does not allow cannot load the module, and no
// call starts.
//
//   node test-cross-origin.mjs [--out DIR] [--keep]
//
// Environment: as test-demo-page.mjs. Exit 0 pass, 1 fail, 77 skip.
// SPDX-License-Identifier: LGPL-2.1-or-later

import http from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  Harness, sourceDir, serverEnv, startVoiceagent, requireTools, logEvents, listCalls,
} from './lib.mjs';

const { values: opts } = parseArgs({
  options: { out: { type: 'string', default: process.cwd() }, keep: { type: 'boolean', default: false } },
});
const h = new Harness('cross-origin', { keep: opts.keep });
const log = (msg) => h.log(msg);
const check = (...a) => h.check(...a);
const until = (...a) => h.until(...a);
let server = null;
let site = null;
let callPage = null;

// The other site's page: it knows only the voiceagent server's address.
function pageHtml(serverUrl) {
  return `<!doctype html><meta charset="utf-8"><title>another site</title>
<audio id="agent" autoplay></audio>
<script type="module">
  window.result = { imported: false, connected: false, events: [], speech: [], session: null, error: null };
  window.voiceagent = { events: [] };
  try {
    const { VoiceAgent } = await import(${JSON.stringify(serverUrl + '/voiceagent.js')});
    window.result.imported = true;
    const agent = new VoiceAgent({ vad: true, audio: document.getElementById('agent') });
    window.agent = agent;
    agent.on('message', (ev, text) => {
      window.result.events.push(ev);
      window.voiceagent.events.push({ dir: 'in', text });
    });
    agent.on('speech', (s) => window.result.speech.push(s));
    // From the POST's response headers alone (the call event, later,
    // also carries the call token).
    agent.on('session', (s) => { window.result.session = window.result.session || s; });
    agent.on('failure', (f) => { window.result.error = f.title + ': ' + f.message; });
    await agent.connect();
    window.result.connected = true;
  } catch (e) {
    window.result.error = window.result.error || String(e);
  }
</script>`;
}

// A plain HTTP server for the page on a loopback port of its own: the
// page's origin is http://localhost:PORT (allowed) or
// http://127.0.0.1:PORT (not), both other than the voiceagent server's
// http://127.0.0.1:ITS_PORT. @serverUrl() is asked at each request: the
// server starts after the site, knowing the site's port.
function startSite(serverUrl) {
  return new Promise((resolve, reject) => {
    const s = http.createServer((req, res) => {
      if (req.url === '/favicon.ico') {
        res.writeHead(204).end();
        return;
      }
      if (req.url !== '/') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(pageHtml(serverUrl()));
    });
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
}

async function openPage(context, url) {
  const page = await context.newPage();
  h.watchPage(page, url);
  await page.goto(url);
  await page.waitForFunction(() => window.result && (window.result.connected || window.result.error),
    null, { timeout: 30000 });
  return page;
}

async function run() {
  requireTools(['espeak-ng', 'sox']);
  const wav = h.speechWav('Hello, I would like to know when you open tomorrow.');
  site = await startSite(() => server.url);
  const sitePort = site.address().port;
  const allowed = `http://localhost:${sitePort}`;
  server = await startVoiceagent(h, {
    pipelines: path.join(sourceDir(), 'pipelines'),
    env: serverEnv({ VOICEAGENT_CORS_ORIGIN: allowed, VOICEAGENT_GREETING: 'Hi.' }),
  });
  log(`voiceagent at ${server.url} allows ${allowed}`);
  const context = await h.launch(wav);

  // The allowed site.
  const page = await openPage(context, `${allowed}/`);
  callPage = page;
  let r = await page.evaluate(() => window.result);
  check('the module loads from the voiceagent server into the other site\'s page', r.imported, r.error || '');
  check('connect() succeeds from the other site (WHIP POST, answer, Location)', r.connected, r.error || '');
  const call = await until('the data channel\'s call event', () => page.evaluate(() =>
    window.result.events.find((e) => e.type === 'call')), 15000, 100);
  const session = await page.evaluate(() => window.result.session);
  check('the session\'s headers are readable cross-origin (Location, Voiceagent-Call-Token)',
    session && session.location && session.callToken && session.id === call.id, JSON.stringify(session));
  const speaking = await until('the client VAD to hear the caller', () => page.evaluate(() =>
    window.result.speech.find((s) => s.speaking)), 20000, 100).catch(() => null);
  check('the client VAD runs from the server\'s vendored files (a speech event)', !!speaking);
  await page.evaluate(() => window.agent.sendText('What time do you open tomorrow?'));
  const answer = await until('the agent\'s answer', () => page.evaluate(() =>
    window.result.events.find((e) => e.type === 'transcript' && e.role === 'agent')), 30000, 100);
  check('a typed question is answered', !!answer.text, JSON.stringify(answer));
  const calls = await listCalls(server.url);
  check('the server lists the call', calls.some((c) => c.id === call.id), JSON.stringify(calls));
  await page.evaluate(() => window.agent.disconnect());
  const left = await until('GET /calls to be empty', async () => {
    const l = await listCalls(server.url);
    return l.length === 0 ? l : null;
  }, 15000, 200);
  check('disconnect() ends the call on the server (a cross-origin DELETE with the call token)', left.length === 0);
  r = await page.evaluate(() => window.result);
  check('no failure on the allowed site', !r.error, r.error || '');
  await page.close();

  // Another origin: the same page, but its origin is not the allowed one.
  const stranger = await openPage(context, `http://127.0.0.1:${sitePort}/`);
  r = await stranger.evaluate(() => window.result);
  check('a site the server does not allow cannot load the module', !r.imported && !!r.error, r.error || 'imported');
  const none = await listCalls(server.url);
  check('and no call started from it', none.length === 0, JSON.stringify(none));
}

const status = await h.outcome(run);
if (status === 1 && callPage && !callPage.isClosed()) {
  await logEvents(h, callPage);
  await callPage.screenshot({ path: path.join(opts.out, 'browser-cross-origin-failed.png'), fullPage: true })
    .catch(() => {});
}
if (site) site.close();
await h.stopAll();
if (status === 1 && server) h.dumpLog(server);
await h.finish(status);
