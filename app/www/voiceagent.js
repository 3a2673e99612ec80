// voiceagent.js: a browser client for the voiceagent server, as an ES
// module with no build step. The server serves it at /voiceagent.js;
// any page may import it (the server sends CORS headers):
//
//   import { VoiceAgent } from 'http://127.0.0.1:8080/voiceagent.js';
//   const agent = new VoiceAgent({ token: 's3cret', vad: true });
//   agent.on('transcript', (ev) => console.log(ev.role, ev.text));
//   await agent.connect();
//
// What it does: WHIP (RFC 9725) from the browser's own WebRTC, the call's
// own credentials for the session (docs/http-api.md#authorization), the
// data channel's events as callbacks, resume after a lost connection
// (with --redis), and, with `vad: true`, Silero VAD in the browser
// (@ricky0123/vad-web on onnxruntime-web, vendored by scripts/setup and
// served at /vendor/): on the caller's speech-start the agent's audio is
// muted at once and the server told, whose confirm-or-resume logic
// decides (docs/turn-taking.md, "Barge-in that pauses first").
// docs/demo-page.md is its manual.
// SPDX-License-Identifier: LGPL-2.1-or-later

/**
 * Every event a VoiceAgent emits, with what its callback receives.
 *
 * From the server's data channel (docs/http-api.md#events), the parsed
 * JSON object as sent:
 * - `call` `{id, call_token, resume_token?}`: the data channel opened
 * - `transcript` `{role: 'user'|'agent', text, final?, turn}`
 * - `vad` `{speaking}`: the server's VAD heard the caller start/stop
 * - `agent` `{speaking}`: the agent's audio started/stopped
 * - `interrupted` `{turn}`: the agent was cut off
 * - `turn` `{turn, state: 'likely'|'resumed'|'committed', text?, eot_ms?, ending?}`
 * - `barge_in` `{state: 'paused'|'resumed'|'confirmed'|'backchannel', reason}`
 * - `metrics` `{turn, stt_ms, llm_ttft_ms, tts_ttfb_ms, voice_to_voice_ms, eot_ms, speculative, false_interruptions}`
 * - `tool_call` `{turn, id, name, kind, arguments}`: the agent runs a tool
 *   (kind `webhook`, `end_call`, `transfer`, `wait` or `unknown`)
 * - `tool_result` `{turn, id, name, ok, error, duration_ms}`: its outcome
 *   (the tool's answer itself stays on the server, in the call record)
 * - `transfer` `{turn, id, arguments}`: the agent hands the caller over
 *   (e.g. `{department: 'billing'}`); the page decides what that means
 * - `wait` `{turn, id}`: the caller asked for a moment; the agent waits
 * - `end_call` `{turn}`: the agent said goodbye and hangs up now
 * - `error` `{message}`: a recoverable problem the server reports
 * - `message` `(event, text)`: every message from the server, known or not
 *
 * From the client:
 * - `state` `{state, detail}`: idle → microphone → gathering → offering →
 *   connecting → connected; reconnecting; ended or failed
 * - `sent` `(text)`: a message this client sent on the data channel
 * - `track` `(MediaStream)`: the agent's audio arrived
 * - `session` `{id, location, callToken, resumeToken}`: the WHIP answer
 * - `resuming` `{attempt}`: the connection was lost; resuming the call
 * - `failure` `{title, message}`: something that did not work (HTTP
 *   errors with the server's reason, ICE failure, hang-up refused, VAD
 *   files missing); the call may go on (a VAD that cannot load) or not
 * - `speech` `{speaking, at}`: the client's VAD heard the caller start or
 *   stop (`at`: performance.now())
 * - `playback` `{paused, reason, at}`: the agent's audio was muted
 *   (`paused: true`, reason `speech`: the client's VAD; `barge_in`: the
 *   server paused first) or unmuted (reason `resumed`, `no-pause`,
 *   `next-reply`, `hangup`)
 * @type {readonly string[]}
 */
export const EVENTS = Object.freeze([
  'call', 'transcript', 'vad', 'agent', 'interrupted', 'turn', 'barge_in', 'metrics',
  'tool_call', 'tool_result', 'transfer', 'wait', 'end_call', 'error', 'message',
  'state', 'sent', 'track', 'session', 'resuming', 'failure', 'speech', 'playback',
]);

const SERVER_EVENTS = new Set(['call', 'transcript', 'vad', 'agent', 'interrupted', 'turn', 'barge_in', 'metrics',
  'tool_call', 'tool_result', 'transfer', 'wait', 'end_call', 'error']);

/**
 * @typedef {object} VadOptions
 * @property {string} [model='v5'] vad-web's model: 'v5' (32 ms frames, the
 *   quicker speech-start) or 'legacy' (96 ms frames)
 * @property {number} [positiveSpeechThreshold=0.3] a frame this likely
 *   speech starts speech
 * @property {number} [negativeSpeechThreshold=0.25] below this, silence
 * @property {number} [redemptionMs=600] silence that ends speech
 * @property {number} [minSpeechMs=250] shorter speech is a misfire
 * @property {number} [verdictMs=1500] after speech stops: how long to wait
 *   for the server's verdict before playing on (the agent was not speaking)
 */

/**
 * @typedef {object} VoiceAgentOptions
 * @property {string} [url] the WHIP endpoint (default: /whip on the server
 *   that served this module, or /whip/{agent})
 * @property {string} [agent] a template name: POST to /whip/{agent}
 * @property {string} [token] the caller token (--token), if the server has one
 * @property {HTMLAudioElement} [audio] where the agent's voice plays (default:
 *   a new Audio element)
 * @property {boolean|VadOptions} [vad=false] client-side Silero VAD
 * @property {string} [vendorUrl] where the VAD's files are (default /vendor/
 *   on the server that served this module)
 * @property {MediaTrackConstraints} [audioConstraints] for getUserMedia
 * @property {number} [iceGatherMs=2000] longest wait for ICE gathering
 * @property {number} [resumeAfterMs=3000] a connection disconnected this long
 *   is resumed
 * @property {number} [resumeTries=3] resumes in a row before giving up
 */

const DEFAULTS = {
  iceGatherMs: 2000,
  resumeAfterMs: 3000,
  resumeTries: 3,
  audioConstraints: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
};

const VAD_DEFAULTS = {
  model: 'v5',
  positiveSpeechThreshold: 0.3,
  negativeSpeechThreshold: 0.25,
  redemptionMs: 600,
  minSpeechMs: 250,
  verdictMs: 1500,
};

/** An HTTP error from the server: its JSON reason, the status in `title`. */
export class VoiceAgentError extends Error {
  /**
   * @param {string} title e.g. "The server refused the call: HTTP 401 Unauthorized"
   * @param {string} message the server's reason
   * @param {number} [status]
   */
  constructor(title, message, status) {
    super(message);
    this.name = 'VoiceAgentError';
    this.title = title;
    this.status = status;
  }
}

// The server's errors are JSON {"error": "...", "status": N}.
async function httpError(resp, what) {
  const body = await resp.text().catch(() => '');
  let reason = body;
  try {
    const j = JSON.parse(body);
    if (j && typeof j.error === 'string') reason = j.error;
  } catch (e) { /* not JSON: the body as it is */ }
  let msg = reason.trim() || resp.statusText || 'no reason given';
  const retry = resp.headers.get('Retry-After');
  if (retry) msg += ' (retry after ' + retry + ' s)';
  return new VoiceAgentError(what + ': HTTP ' + resp.status + (resp.statusText ? ' ' + resp.statusText : ''),
    msg, resp.status);
}

/**
 * The ICE servers of an OPTIONS /whip answer's Link headers (RFC 9725 §4.6).
 * @param {string|null} header
 * @returns {RTCIceServer[]}
 */
export function parseIceLinks(header) {
  const servers = [];
  if (!header) return servers;
  for (const part of header.split(/,(?=\s*<)/)) {
    const m = /<([^>]+)>(.*)/.exec(part.trim());
    if (!m || !/rel="?ice-server"?/.test(m[2])) continue;
    const url = m[1].replace(/^(stuns?|turns?):\/\//, '$1:');
    if (!/^(stuns?|turns?):/.test(url)) continue;
    const s = { urls: url };
    const user = /username="([^"]*)"/.exec(m[2]);
    const cred = /credential="([^"]*)"/.exec(m[2]);
    if (user) s.username = user[1];
    if (cred) s.credential = cred[1];
    servers.push(s);
  }
  return servers;
}

function gatheringDone(pc, capMs) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = () => { if (pc.iceGatheringState === 'complete') done(); };
    const timer = setTimeout(done, capMs);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

// Loads a classic script once per page (vad-web and ort are UMD bundles:
// they set window.vad and window.ort).
const scripts = new Map();
function loadScript(src) {
  if (!scripts.has(src)) {
    scripts.set(src, new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = src;
      s.async = false;
      s.crossOrigin = 'anonymous';
      s.onload = () => resolve();
      s.onerror = () => {
        scripts.delete(src);
        reject(new Error(src + ' did not load: run scripts/setup on the server, which vendors the VAD files'));
      };
      document.head.append(s);
    }));
  }
  return scripts.get(src);
}

/**
 * One call to a voiceagent server. Events: see EVENTS.
 */
export class VoiceAgent {
  /** @param {VoiceAgentOptions} [options] */
  constructor(options = {}) {
    this.options = { ...DEFAULTS, ...options };
    const here = new URL(import.meta.url);
    this.url = options.url ||
      new URL('/whip' + (options.agent ? '/' + encodeURIComponent(options.agent) : ''), here).href;
    this.vendorUrl = options.vendorUrl || new URL('/vendor/', here).href;
    this.vadOptions = options.vad ? { ...VAD_DEFAULTS, ...(options.vad === true ? {} : options.vad) } : null;
    /** @type {HTMLAudioElement} */
    this.audio = options.audio || new Audio();
    this.audio.autoplay = true;
    /** @type {string} */
    this.state = 'idle';
    /** @type {RTCPeerConnection|null} */
    this.pc = null;
    /** @type {RTCDataChannel|null} */
    this.channel = null;
    /** @type {MediaStream|null} the microphone */
    this.stream = null;
    /** @type {MediaStream|null} the agent's audio */
    this.remoteStream = null;
    /** The call's id, its own token, its resume token (with --redis), its session URL. */
    this.callId = null;
    this.callToken = null;
    this.resumeToken = null;
    this.location = null;
    /** Whether the agent's audio is muted by the client VAD's barge-in. */
    this.playbackPaused = false;
    this._handlers = new Map();
    this._call = null; // the current call's private state, or null
  }

  /**
   * Calls @cb for each @event (see EVENTS). Returns a function that
   * removes it.
   * @param {string} event
   * @param {(...args: any[]) => void} cb
   * @returns {() => void}
   */
  on(event, cb) {
    if (!EVENTS.includes(event)) throw new TypeError('VoiceAgent: no event "' + event + '"; events are ' + EVENTS.join(', '));
    if (!this._handlers.has(event)) this._handlers.set(event, new Set());
    this._handlers.get(event).add(cb);
    return () => this.off(event, cb);
  }

  /** Removes a callback added with on(). */
  off(event, cb) {
    this._handlers.get(event)?.delete(cb);
  }

  _emit(event, ...args) {
    for (const cb of this._handlers.get(event) || []) {
      try {
        cb(...args);
      } catch (e) {
        console.error('voiceagent: a "' + event + '" callback threw', e);
      }
    }
  }

  _setState(state, detail) {
    this.state = state;
    this._emit('state', { state, detail: detail || null });
  }

  _fail(title, message) {
    this._emit('failure', { title, message });
  }

  _authHeaders(extra, useCallToken) {
    const h = Object.assign({}, extra);
    const t = useCallToken && this.callToken ? this.callToken : this.options.token;
    if (t) h.Authorization = 'Bearer ' + t;
    return h;
  }

  /**
   * Starts a call: the microphone (or @stream), ICE servers, the offer, the
   * answer. Resolves once the answer is applied (the state goes on to
   * `connected`); rejects with a VoiceAgentError (HTTP) or the browser's
   * error (microphone, WebRTC), after a `failure` event.
   * @param {MediaStream} [stream] a microphone stream to send (not stopped
   *   at hang-up); default: getUserMedia
   */
  async connect(stream) {
    if (this._call) throw new Error('VoiceAgent: already in a call; disconnect() first');
    if (!window.isSecureContext || !navigator.mediaDevices || !window.RTCPeerConnection) {
      this._setState('failed');
      const err = new VoiceAgentError('This browser cannot call from here',
        'The microphone and WebRTC need a secure context: open the page over https:// or on localhost.');
      this._fail(err.title, err.message);
      throw err;
    }
    const c = {
      abort: new AbortController(), ending: false, servers: [], ownStream: !stream,
      resumes: 0, resumeTimer: null, vad: null, verdictTimer: null, pausedBy: null, cut: false,
    };
    this._call = c;
    this.callId = this.callToken = this.resumeToken = this.location = null;
    try {
      this._setState('microphone');
      this.stream = stream || await navigator.mediaDevices.getUserMedia({ audio: this.options.audioConstraints, video: false });
      if (this._call !== c) return;
      if (this.vadOptions) this._startVad(c);
      c.servers = await this._iceServers(c.abort.signal);
      if (this._call !== c) return;
      await this._offer(c);
    } catch (e) {
      if (this._call !== c) return;
      const title = e.title || (e.name === 'NotAllowedError' ? 'No microphone access'
        : e.name === 'NotFoundError' ? 'No microphone found' : 'The call failed');
      // The failure first: a listener to `state` may drop this agent.
      this._fail(title, e.message || String(e));
      this._end('failed', null);
      throw e;
    }
  }

  /**
   * Hangs up: closes the connection and DELETEs the session with the
   * call's token. Resolves when the server answered (a 404 means it had
   * ended the call already).
   */
  disconnect() {
    return this._end('ended', 'call ended') || Promise.resolve();
  }

  /**
   * Sends a message on the data channel. Returns false when it is not open.
   * @param {object} obj
   */
  send(obj) {
    const ch = this._call && this.channel;
    if (!ch || ch.readyState !== 'open') return false;
    const text = JSON.stringify(obj);
    ch.send(text);
    this._emit('sent', text);
    return true;
  }

  /** Types a turn to the agent, as if said. Returns false if not connected. */
  sendText(text) {
    return this.send({ type: 'text', text: String(text) });
  }

  /** Stops the agent now ({"event":"user_interrupted"}): no pause, no verdict. */
  interrupt() {
    return this.send({ event: 'user_interrupted' });
  }

  /** Whether the data channel is open (send() works). */
  get open() {
    return !!(this._call && this.channel && this.channel.readyState === 'open');
  }

  async _iceServers(signal) {
    try {
      const resp = await fetch(this.url, { method: 'OPTIONS', headers: this._authHeaders(), signal });
      return parseIceLinks(resp.headers.get('Link'));
    } catch (e) {
      if (signal.aborted) throw e;
      return [];
    }
  }

  // Offers on a new peer connection and POSTs it; with a resume token, as a
  // resume of the same call (the agent keeps the conversation).
  async _offer(c) {
    let pc;
    try {
      pc = new RTCPeerConnection({ iceServers: c.servers, bundlePolicy: 'max-bundle' });
    } catch (e) {
      pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    }
    this.pc = pc;
    const mine = () => this._call === c && this.pc === pc;
    pc.addTransceiver(this.stream.getAudioTracks()[0], { direction: 'sendrecv', streams: [this.stream] });
    // Created before the offer, so the offer carries the SCTP section.
    const ch = pc.createDataChannel('events');
    this.channel = ch;
    ch.onclose = () => {
      if (!mine()) return;
      if (!c.ending && this.state === 'connected') this._end('ended', 'the server ended the call');
    };
    ch.onmessage = (e) => this._onMessage(e);
    pc.ontrack = (e) => {
      const s = e.streams[0] || new MediaStream([e.track]);
      this.remoteStream = s;
      this.audio.srcObject = s;
      this.audio.play().catch(() => {});
      this._emit('track', s);
    };
    pc.onconnectionstatechange = () => {
      if (!mine()) return;
      switch (pc.connectionState) {
        case 'connected':
          clearTimeout(c.resumeTimer);
          c.resumes = 0;
          this._setState('connected');
          break;
        case 'disconnected':
          this._setState('reconnecting');
          clearTimeout(c.resumeTimer);
          c.resumeTimer = setTimeout(() => this._resume(c, pc), this.options.resumeAfterMs);
          break;
        case 'failed':
          if (!this._resume(c, pc)) this._end('failed', 'the connection to the server failed (ICE)');
          break;
        default: break;
      }
    };

    this._setState('gathering');
    await pc.setLocalDescription(await pc.createOffer());
    await gatheringDone(pc, this.options.iceGatherMs);
    if (!mine()) return;

    this._setState('offering');
    const extra = { 'Content-Type': 'application/sdp' };
    if (this.resumeToken) extra['Voiceagent-Resume'] = this.resumeToken;
    // fetch follows a 307 (a full instance) with the same body and headers.
    const resp = await fetch(this.url, {
      method: 'POST', headers: this._authHeaders(extra), body: pc.localDescription.sdp, signal: c.abort.signal,
    });
    if (resp.status !== 201)
      throw await httpError(resp, this.resumeToken ? 'The call could not be resumed' : 'The server refused the call');
    this.resumeToken = resp.headers.get('Voiceagent-Resume-Token') || this.resumeToken;
    this.callToken = resp.headers.get('Voiceagent-Call-Token') || this.callToken;
    const loc = resp.headers.get('Location');
    if (loc) {
      this.location = new URL(loc, resp.url || this.url).href;
      this.callId = decodeURIComponent(new URL(this.location).pathname.split('/').pop());
    }
    this._emit('session', { id: this.callId, location: this.location, callToken: this.callToken, resumeToken: this.resumeToken });
    const answer = await resp.text();
    if (!mine()) {
      this._deleteSession();
      return;
    }
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    if (pc.connectionState !== 'connected') this._setState('connecting');
  }

  // The connection of @pc is lost: POST again with the resume token (the
  // server may be another instance). Returns false when it cannot.
  _resume(c, pc) {
    if (this._call !== c || this.pc !== pc || c.ending || !this.resumeToken || c.resumes >= this.options.resumeTries)
      return false;
    c.resumes++;
    clearTimeout(c.resumeTimer);
    this._emit('resuming', { attempt: c.resumes });
    this.location = null; // the old session may be gone with its instance
    if (this.channel) this.channel.onclose = null;
    pc.close();
    this._offer(c).catch((e) => {
      if (this._call !== c) return;
      this._fail(e.title || 'The call could not be resumed', e.message || String(e));
      this._end('failed', null);
    });
    return true;
  }

  _deleteSession() {
    if (!this.location) return Promise.resolve();
    const loc = this.location;
    this.location = null;
    // The call's own token: it grants this call and no other.
    return fetch(loc, { method: 'DELETE', headers: this._authHeaders({}, true), keepalive: true })
      .then(async (resp) => {
        // 404: the call had already ended on the server; nothing to undo.
        if (!resp.ok && resp.status !== 404) {
          const err = await httpError(resp, 'Hang-up was refused');
          this._fail(err.title, err.message);
        }
      })
      .catch((e) => this._fail('Hang-up did not reach the server', e.message || String(e)));
  }

  _end(state, why) {
    const c = this._call;
    if (!c) return null;
    c.ending = true;
    clearTimeout(c.resumeTimer);
    clearTimeout(c.verdictTimer);
    c.abort.abort();
    const deleted = this._deleteSession();
    this._call = null;
    if (this.channel) this.channel.onclose = null;
    if (this.pc) this.pc.close();
    if (c.vad) c.vad.then((v) => v && v.destroy()).catch(() => {});
    if (this.stream && c.ownStream) this.stream.getTracks().forEach((t) => t.stop());
    this.audio.srcObject = null;
    this._setPlayback(false, 'hangup');
    this.pc = this.channel = this.remoteStream = null;
    this._setState(state, why);
    return deleted;
  }

  /* ---- Data channel ---- */

  _onMessage(e) {
    if (typeof e.data !== 'string') return;
    let ev;
    try {
      ev = JSON.parse(e.data);
    } catch (err) {
      return;
    }
    if (!ev || typeof ev !== 'object') return;
    this._emit('message', ev, e.data);
    if (ev.type === 'call') {
      if (typeof ev.id === 'string') this.callId = ev.id;
      if (typeof ev.call_token === 'string' && ev.call_token) this.callToken = ev.call_token;
      if (typeof ev.resume_token === 'string' && ev.resume_token) this.resumeToken = ev.resume_token;
    }
    if (this.vadOptions) this._verdict(ev);
    if (SERVER_EVENTS.has(ev.type)) this._emit(ev.type, ev);
  }

  /* ---- Client VAD and local playback ---- */

  // Mutes (or unmutes) the agent's audio here, at once: muting the element
  // takes effect on the next audio render quantum.
  _setPlayback(paused, reason) {
    if (this.playbackPaused === paused) return;
    this.playbackPaused = paused;
    this.audio.muted = paused;
    this._emit('playback', { paused, reason, at: performance.now() });
  }

  _startVad(c) {
    const o = this.vadOptions;
    c.vad = (async () => {
      await loadScript(this.vendorUrl + 'ort.wasm.min.js');
      await loadScript(this.vendorUrl + 'bundle.min.js');
      if (this._call !== c) return null;
      const stream = this.stream;
      const v = await window.vad.MicVAD.new({
        model: o.model,
        baseAssetPath: this.vendorUrl,
        onnxWASMBasePath: this.vendorUrl,
        positiveSpeechThreshold: o.positiveSpeechThreshold,
        negativeSpeechThreshold: o.negativeSpeechThreshold,
        redemptionMs: o.redemptionMs,
        minSpeechMs: o.minSpeechMs,
        preSpeechPadMs: 0,
        // The same microphone the call sends; the call owns it.
        getStream: async () => stream,
        pauseStream: async () => {},
        resumeStream: async () => stream,
        // Single-threaded WebAssembly: threads need a cross-origin
        // isolated page (COOP/COEP), which no page should need for this.
        ortConfig: (ort) => {
          ort.env.wasm.numThreads = 1;
          ort.env.logLevel = 'error';
        },
        onSpeechStart: () => { if (this._call === c) this._onSpeech(c, true); },
        onSpeechEnd: () => { if (this._call === c) this._onSpeech(c, false); },
        onVADMisfire: () => { if (this._call === c) this._onSpeech(c, false); },
        startOnLoad: true,
      });
      if (this._call !== c) {
        v.destroy();
        return null;
      }
      return v;
    })();
    c.vad.catch((e) => {
      if (this._call === c) this._fail('The voice detector did not start (the call goes on without it)', e.message || String(e));
    });
  }

  // The client's VAD: speech mutes the agent here at once and tells the
  // server, whose verdict (barge_in) decides whether it plays on.
  _onSpeech(c, speaking) {
    const at = performance.now();
    if (speaking) {
      clearTimeout(c.verdictTimer);
      if (!this.playbackPaused) {
        c.pausedBy = 'speech';
        this._setPlayback(true, 'speech');
      }
    }
    this._emit('speech', { speaking, at });
    this.send({ event: speaking ? 'user_speech_start' : 'user_speech_stop' });
    // No pause on the server (the agent was not speaking): nothing to
    // decide, so play on once the caller has stopped.
    if (!speaking && c.pausedBy === 'speech') {
      clearTimeout(c.verdictTimer);
      c.verdictTimer = setTimeout(() => {
        if (this._call === c && c.pausedBy === 'speech') {
          c.pausedBy = null;
          this._setPlayback(false, 'no-pause');
        }
      }, this.vadOptions.verdictMs);
    }
  }

  // The server's verdict on a pause: resumed plays on; confirmed or
  // interrupted keeps the cut reply silent until the next one starts.
  _verdict(ev) {
    const c = this._call;
    if (!c) return;
    if (ev.type === 'barge_in' && ev.state === 'paused') {
      clearTimeout(c.verdictTimer);
      c.pausedBy = 'server';
      this._setPlayback(true, 'barge_in');
    } else if (ev.type === 'barge_in' && (ev.state === 'resumed' || ev.state === 'backchannel')) {
      clearTimeout(c.verdictTimer);
      c.pausedBy = null;
      this._setPlayback(false, 'resumed');
    } else if ((ev.type === 'barge_in' && ev.state === 'confirmed') || ev.type === 'interrupted') {
      clearTimeout(c.verdictTimer);
      c.pausedBy = 'cut';
    } else if (ev.type === 'agent' && c.pausedBy === 'cut') {
      // The cut reply's audio is flushed; what follows is the next reply.
      c.pausedBy = null;
      this._setPlayback(false, 'next-reply');
    }
  }
}
