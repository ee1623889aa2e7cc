// Switchboard softphone. It signs the agent in over one WebSocket, negotiates one
// RTCPeerConnection with its instance (G.711 mu-law, the only codec the server offers), and
// drives calls with the JSON messages described in docs/agents.md. There is no build step:
// these files are served as they are, in the order index.html loads them:
// desk.js (the shared state and helpers), audio.js, log.js, transfer.js, then app.js.
'use strict';

// desk.js is what every other script of the page shares, through window.Softphone: the
// page's state (st), its elements by test id ($), the words it shows, the error banner and
// the signalling socket's send. Each later script adds its own functions to it.
(() => {
  const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
  const TOKEN_KEY = 'switchboard.agent-token';
  // /agent?raw turns the browser's echo cancellation, noise suppression and gain control off,
  // so a test tone arrives as it was sent. Agents on speakers want them on.
  const RAW_AUDIO = new URLSearchParams(location.search).has('raw');

  const st = {
    ws: null, pc: null, mic: null, micError: '', token: '',
    agent: null, availability: null, call: null, ringing: null, callStart: 0, digits: '',
    remoteSet: false, pendingCandidates: [], iceServers: [],
    stop: true, reconnectDelay: 500, reconnectTimer: 0, pingTimer: 0,
    audioCtx: null, analyser: null, ringer: null,
    // Wrap-up: the dispositions the server takes, and the call being wrapped up
    // ({call_id, number, status, message}), from its answer until the next connected call.
    dispositions: [], maxNotes: 2000, wrap: null,
    ended: [], // the calls that ended lately, newest first
    // The call log (newest first), kept for this tab's session: {call_id, number, direction,
    // at, duration (s), outcome, disposition}.
    log: [],
    // The microphone's level meter: its analyser and the timer reading it.
    micMeter: null, micLevel: 0,
  };

  // Test hooks: the browser tests read what the page hears and where it stands.
  window.switchboard = {
    // power returns the received audio's level at hz, in dB (-Infinity before any audio).
    power(hz) {
      const an = st.analyser;
      if (!an) return -Infinity;
      const data = new Float32Array(an.frequencyBinCount);
      an.getFloatFrequencyData(data);
      const bin = Math.round(hz * an.fftSize / st.audioCtx.sampleRate);
      return Math.max(data[bin - 1], data[bin], data[bin + 1]);
    },
    peerState: () => (st.pc ? st.pc.connectionState : 'none'),
    // sendingDevice is the device id of the microphone the call's sender carries.
    sendingDevice() {
      const sender = st.pc && st.pc.getSenders().find((x) => x.track && x.track.kind === 'audio');
      return sender ? sender.track.getSettings().deviceId : '';
    },
    snapshot: () => JSON.parse(JSON.stringify({
      availability: st.availability, call: st.call, ringing: st.ringing, connected: !!st.ws,
      wrap: st.wrap, log: st.log, micLevel: st.micLevel,
    })),
  };

  // ---- what the agent sees ----------------------------------------------------------------

  const labels = {
    available: 'Available', away: 'Away', busy: 'On a call', 'wrap-up': 'Wrap-up', offline: 'Offline',
    queued: 'Placing call…', initiated: 'Calling…', ringing: 'Ringing…', 'in-progress': 'Connected',
    'on-hold': 'On hold',
    completed: 'Ended', busyCall: 'Busy', 'no-answer': 'No answer', failed: 'Failed', canceled: 'Canceled',
  };
  const endedText = {
    hangup: 'The other party hung up', 'agent-hangup': 'You hung up', completed: 'Call ended',
    missed: 'Missed: you did not answer, so you are now away', declined: 'Declined',
    gone: 'The call is no longer available', 'no-agent': 'Nobody took the call',
    'carrier-failed': 'Carrier failed: the call could not be placed', 'media-lost': 'The call audio was lost',
    'agent-lost': 'The call ended while you were disconnected', busy: 'Busy', 'no-answer': 'No answer',
    failed: 'The call failed', canceled: 'Canceled', transferred: 'You transferred the call',
    'consult-ended': 'The consult ended',
  };
  const failureReasons = new Set(['carrier-failed', 'media-lost', 'failed', 'busy', 'no-answer']);

  function showError(message, kind) {
    $('error-message').textContent = message.charAt(0).toUpperCase() + message.slice(1);
    $('error-banner').dataset.kind = kind || 'error';
    $('error-banner').hidden = false;
  }
  function clearError(kind) {
    if (!kind || $('error-banner').dataset.kind === kind) $('error-banner').hidden = true;
  }
  function pill(el, state, text) {
    el.dataset.state = state || '';
    el.textContent = text || state || '';
  }
  function setConnection(state, text) { pill($('connection-state'), state, text); }

  function clock(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  }

  function send(msg) {
    if (st.ws && st.ws.readyState === WebSocket.OPEN) st.ws.send(JSON.stringify(msg));
  }

  window.Softphone = {
    $, st, TOKEN_KEY, RAW_AUDIO, labels, endedText, failureReasons,
    showError, clearError, pill, setConnection, clock, send,
  };
})();
