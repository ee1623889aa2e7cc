// Switchboard softphone. It signs the agent in over one WebSocket, negotiates one
// RTCPeerConnection with its instance (G.711 mu-law, the only codec the server offers), and
// drives calls with the JSON messages described in docs/agents.md. There is no build step:
// this file is served as it is.
'use strict';

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
    snapshot: () => JSON.parse(JSON.stringify({
      availability: st.availability, call: st.call, ringing: st.ringing, connected: !!st.ws,
    })),
  };

  // ---- what the agent sees ----------------------------------------------------------------

  const labels = {
    available: 'Available', away: 'Away', busy: 'On a call', 'wrap-up': 'Wrap-up', offline: 'Offline',
    queued: 'Placing call…', initiated: 'Calling…', ringing: 'Ringing…', 'in-progress': 'Connected',
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

  function render() {
    const signedIn = !!st.agent;
    $('login-panel').hidden = signedIn;
    $('desk-panel').hidden = !signedIn;
    if (!signedIn) return;
    $('agent-name').textContent = st.agent.name || st.agent.id;
    const a = st.availability || {};
    pill($('availability-state'), a.state, labels[a.state] || a.state);
    if (a.state === 'available' || a.state === 'away') $('availability-select').value = a.state;
    if (a.next) $('availability-select').value = a.next;

    const r = st.ringing;
    $('incoming-panel').hidden = !r;
    if (r) $('incoming-from').textContent = r.from || 'Unknown caller';

    const c = st.call;
    $('call-panel').hidden = !c;
    if (c) {
      const inbound = c.direction === 'inbound';
      $('call-direction').textContent = inbound ? 'Call from' : 'Call to';
      $('call-peer').textContent = (inbound ? c.from : c.to) || '';
      pill($('call-state'), c.state, c.state === 'busy' ? labels.busyCall : (labels[c.state] || c.state));
      $('mute-button').setAttribute('aria-pressed', String(!!c.muted));
      $('mute-button').textContent = c.muted ? 'Unmute' : 'Mute';
      $('hold-button').setAttribute('aria-pressed', String(!!c.held));
      $('hold-button').textContent = c.held ? 'Resume' : 'Hold';
      $('call-digits').textContent = st.digits ? `Caller pressed ${st.digits}` : '';
    }
    const online = !!st.ws && st.ws.readyState === WebSocket.OPEN;
    $('dial-button').disabled = !online || !!c || !!r;
    $('answer-button').disabled = !online;
    renderTransfer();
    tick();
  }

  // tick updates what changes with time: the call timer and the wrap-up countdown.
  function tick() {
    const c = st.call;
    $('call-timer').textContent = c && st.callStart ? clock(Date.now() - st.callStart) : '0:00';
    const a = st.availability || {};
    let detail = '';
    if (a.state === 'wrap-up' && a.until) detail = `available in ${clock(Date.parse(a.until) - Date.now())}`;
    if (a.next) detail = `${labels[a.next] || a.next} after this call`;
    $('availability-detail').textContent = detail;
  }
  setInterval(tick, 250);

  function logCall(text) {
    const li = document.createElement('li');
    li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
    $('call-log').prepend(li);
    while ($('call-log').children.length > 8) $('call-log').lastChild.remove();
  }

  // ---- audio ------------------------------------------------------------------------------

  // ensureAudio creates the AudioContext; called from a click so the browser lets it play.
  function ensureAudio() {
    if (!st.audioCtx) st.audioCtx = new AudioContext();
    if (st.audioCtx.state === 'suspended') st.audioCtx.resume();
  }
  document.addEventListener('click', ensureAudio);

  async function openMicrophone() {
    if (st.mic) return;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      st.micError = 'No microphone: the softphone must be opened over https (or on localhost).';
      showError(st.micError, 'microphone');
      return;
    }
    const audio = RAW_AUDIO ? { echoCancellation: false, noiseSuppression: false, autoGainControl: false } : true;
    try {
      st.mic = await navigator.mediaDevices.getUserMedia({ audio });
      st.micError = '';
      clearError('microphone');
    } catch (err) {
      st.micError = err && err.name === 'NotAllowedError'
        ? 'Microphone access was denied. Allow the microphone for this site, then sign in again; callers cannot hear you.'
        : `No microphone available (${err && err.name}); callers cannot hear you.`;
      showError(st.micError, 'microphone');
    }
  }

  function attachRemote(stream) {
    const el = $('remote-audio');
    el.srcObject = stream;
    el.play().catch(() => {});
    ensureAudio();
    const source = st.audioCtx.createMediaStreamSource(stream);
    const an = st.audioCtx.createAnalyser();
    an.fftSize = 4096;
    an.smoothingTimeConstant = 0.2;
    source.connect(an);
    st.analyser = an;
  }

  // The ring: 440 + 480 Hz, two seconds on, four off, quietly, while a call is offered.
  function startRinger() {
    if (st.ringer || !st.audioCtx) return;
    const ctx = st.audioCtx;
    const gain = ctx.createGain();
    gain.gain.value = 0;
    gain.connect(ctx.destination);
    const oscs = [440, 480].map((f) => {
      const o = ctx.createOscillator();
      o.frequency.value = f;
      o.connect(gain);
      o.start();
      return o;
    });
    const cycle = () => {
      const t = ctx.currentTime;
      gain.gain.setValueAtTime(0.04, t);
      gain.gain.setValueAtTime(0, t + 2);
    };
    cycle();
    st.ringer = { oscs, gain, timer: setInterval(cycle, 6000) };
  }
  function stopRinger() {
    if (!st.ringer) return;
    clearInterval(st.ringer.timer);
    st.ringer.oscs.forEach((o) => o.stop());
    st.ringer.gain.disconnect();
    st.ringer = null;
  }

  // ---- signalling -------------------------------------------------------------------------

  function send(msg) {
    if (st.ws && st.ws.readyState === WebSocket.OPEN) st.ws.send(JSON.stringify(msg));
  }

  function connect() {
    clearTimeout(st.reconnectTimer);
    const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/agent/ws`);
    st.ws = ws;
    // While reconnecting the pill keeps saying so, instead of flickering to "connecting".
    if ($('connection-state').dataset.state !== 'reconnecting') setConnection('connecting', 'connecting…');
    ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', token: st.token }));
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      onMessage(m);
    };
    ws.onclose = () => {
      if (st.ws !== ws) return;
      st.ws = null;
      clearInterval(st.pingTimer);
      render();
      if (st.stop) return;
      setConnection('reconnecting', 'reconnecting…');
      showError('Connection lost. Reconnecting…', 'connection');
      st.reconnectTimer = setTimeout(connect, st.reconnectDelay);
      st.reconnectDelay = Math.min(st.reconnectDelay * 2, 8000);
    };
  }

  async function negotiate() {
    if (st.pc) st.pc.close();
    // STUN/TURN servers come with the welcome (SWITCHBOARD_ICE_SERVERS); none by default.
    const pc = new RTCPeerConnection({ iceServers: st.iceServers });
    st.pc = pc;
    st.remoteSet = false;
    st.pendingCandidates = [];
    if (st.mic) st.mic.getAudioTracks().forEach((t) => pc.addTrack(t, st.mic));
    else pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.ontrack = (ev) => attachRemote(ev.streams[0] || new MediaStream([ev.track]));
    pc.onicecandidate = (ev) => {
      if (st.pc === pc) send({ type: 'candidate', candidate: ev.candidate ? ev.candidate.toJSON() : null });
    };
    pc.onconnectionstatechange = () => {
      if (st.pc !== pc) return;
      if (pc.connectionState === 'failed') {
        showError('The audio connection failed. Reconnecting audio…', 'media');
        setTimeout(() => { if (st.pc === pc && st.ws) negotiate(); }, 1000);
      } else if (pc.connectionState === 'connected') {
        clearError('media');
      }
    };
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    send({ type: 'offer', sdp: pc.localDescription.sdp });
  }

  async function onMessage(m) {
    transferOnMessage(m);
    switch (m.type) {
      case 'welcome':
        st.reconnectDelay = 500;
        clearError('connection');
        setConnection('connected', 'connected');
        st.agent = m.agent;
        st.iceServers = m.ice_servers || [];
        st.availability = { state: m.state, since: m.since, until: m.until };
        st.ringing = m.ringing || null;
        setCall(m.call || null, true);
        if (st.ringing) startRinger(); else stopRinger();
        clearInterval(st.pingTimer);
        st.pingTimer = setInterval(() => send({ type: 'ping' }), 5000);
        render();
        negotiate().catch((err) => showError(`Audio setup failed: ${err.message}`, 'media'));
        break;
      case 'answer':
        if (!st.pc) return;
        await st.pc.setRemoteDescription({ type: 'answer', sdp: m.sdp });
        st.remoteSet = true;
        for (const c of st.pendingCandidates.splice(0)) st.pc.addIceCandidate(c).catch(() => {});
        break;
      case 'candidate':
        if (!st.pc || !m.candidate) return;
        if (st.remoteSet) st.pc.addIceCandidate(m.candidate).catch(() => {});
        else st.pendingCandidates.push(m.candidate);
        break;
      case 'ringing':
        st.ringing = m;
        startRinger();
        render();
        break;
      case 'call':
        if (st.ringing && st.ringing.call_id === m.call_id) {
          st.ringing = null;
          stopRinger();
        }
        setCall(m, false);
        render();
        break;
      case 'ended': {
        const text = endedText[m.reason] || `Call ended (${m.reason})`;
        if (st.ringing && st.ringing.call_id === m.call_id) {
          st.ringing = null;
          stopRinger();
          logCall(`${m.reason === 'declined' ? 'Declined' : 'Missed'} call: ${text}`);
        }
        if (st.call && st.call.call_id === m.call_id) {
          const c = st.call;
          logCall(`${c.direction === 'inbound' ? 'From' : 'To'} ${(c.direction === 'inbound' ? c.from : c.to) || '?'}: ${text}`);
          setCall(null, false);
        }
        // A specific error about this call (the carrier's reason) stays up over the
        // general one the end of the call brings.
        const specific = !$('error-banner').hidden && $('error-banner').dataset.kind === 'call';
        if ((failureReasons.has(m.reason) || m.reason === 'missed') && !specific) showError(text, 'call');
        render();
        break;
      }
      case 'availability':
        st.availability = m;
        if (m.state === 'offline') signOut(false);
        render();
        break;
      case 'dtmf':
        st.digits += m.digit;
        render();
        break;
      case 'error':
        onError(m);
        break;
      default:
        break;
    }
  }

  function setCall(c, fromWelcome) {
    const same = c && st.call && st.call.call_id === c.call_id;
    if (!same) st.digits = '';
    st.call = c;
    if (!c || !c.answered_at) {
      st.callStart = 0;
    } else if (!st.callStart || !same) {
      // The timer runs from when this page learned of the answer, unless the page is
      // catching up after a reconnect: then from the server's answer time.
      st.callStart = fromWelcome ? Date.parse(c.answered_at) : Date.now();
    }
    if (c) clearError('call');
  }

  function onError(m) {
    switch (m.code) {
      case 'unauthorized':
        showError(m.message || 'That token is not valid.', 'auth');
        signOut(true);
        break;
      case 'revoked':
        // An admin rotated the token or deleted the agent: the old token is useless, forget it.
        showError(m.message || 'Your sign-in was revoked; ask an admin for a new token.', 'auth');
        signOut(true);
        break;
      case 'replaced':
        // Another window took over; reconnecting would take it back, so this one stops.
        showError('You signed in in another window or on another device; this one is disconnected.', 'replaced');
        signOut(false);
        setConnection('offline', 'signed in elsewhere');
        break;
      case 'carrier_failed':
        showError(m.message || 'Carrier failed: the call could not be placed.', 'call');
        break;
      default:
        showError(m.message || m.code, m.code);
    }
  }

  // ---- the agent's actions ----------------------------------------------------------------

  async function signIn(token) {
    st.token = token;
    st.stop = false;
    sessionStorage.setItem(TOKEN_KEY, token);
    clearError();
    ensureAudio();
    await openMicrophone();
    connect();
  }

  function signOut(forget) {
    st.stop = true;
    if (forget) sessionStorage.removeItem(TOKEN_KEY);
    clearTimeout(st.reconnectTimer);
    clearInterval(st.pingTimer);
    stopRinger();
    if (st.ws) st.ws.close();
    st.ws = null;
    if (st.pc) st.pc.close();
    st.pc = null;
    st.agent = null;
    st.call = null;
    st.ringing = null;
    setConnection('signed-out', 'signed out');
    render();
  }

  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const token = $('login-token').value.trim();
    if (token) signIn(token);
  });
  $('logout').addEventListener('click', () => {
    send({ type: 'availability', state: 'offline' });
    sessionStorage.removeItem(TOKEN_KEY);
    setTimeout(() => signOut(true), 100);
  });
  $('availability-select').addEventListener('change', (ev) => send({ type: 'availability', state: ev.target.value }));
  $('error-dismiss').addEventListener('click', () => clearError());

  $('answer-button').addEventListener('click', () => {
    if (st.ringing) send({ type: 'answer', call_id: st.ringing.call_id });
  });
  $('decline-button').addEventListener('click', () => {
    if (st.ringing) send({ type: 'decline', call_id: st.ringing.call_id });
  });
  $('hangup-button').addEventListener('click', () => {
    if (st.call) send({ type: 'hangup', call_id: st.call.call_id });
  });
  $('mute-button').addEventListener('click', () => {
    if (st.call) send({ type: 'mute', on: !st.call.muted });
  });
  $('hold-button').addEventListener('click', () => {
    if (st.call) send({ type: 'hold', on: !st.call.held });
  });

  const normalize = (s) => s.replace(/[\s().-]/g, '');
  $('dial-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const to = normalize($('dial-number').value);
    if (!/^\+[1-9][0-9]{7,14}$/.test(to)) {
      showError('Enter the number with + and the country code, e.g. +15551234567.', 'dial');
      return;
    }
    clearError('dial');
    if (st.micError) showError(st.micError, 'microphone');
    send({ type: 'dial', to });
  });
  $('dial-clear').addEventListener('click', () => {
    $('dial-number').value = $('dial-number').value.slice(0, -1);
  });
  // During a connected call the keypad sends DTMF; otherwise it types the number.
  $('dial-pad').addEventListener('click', (ev) => {
    const key = ev.target.dataset && ev.target.dataset.key;
    if (!key) return;
    if (st.call && st.call.state === 'in-progress') {
      send({ type: 'dtmf', digits: key });
      return;
    }
    const input = $('dial-number');
    if (!input.value && key !== '+') input.value = '+';
    input.value += key;
  });

  // ---- transfer -------------------------------------------------------------------------------
  // Blind and warm transfers to another agent, and the conference (docs/agents.md, "Transfers
  // and conference"). The state shows in transfer-state's data-state: idle, choosing (the
  // target form is open), requesting (sent, waiting for the answer), ringing (the consulted
  // agent rings), consulting, conference, transferred, canceled, refused.

  const transferLabels = {
    idle: '', choosing: 'Transfer to…', requesting: 'Transferring…', ringing: 'Calling the agent…',
    consulting: 'Consulting (caller on hold)', conference: 'Conference', transferred: 'Transferred',
    canceled: 'Transfer canceled', refused: 'Not transferred',
  };
  const transferRefusals = new Set([
    'unknown_agent', 'target_offline', 'target_busy', 'target_unavailable', 'not_implemented', 'bad_request', 'no_call',
    'busy', 'ringing',
  ]);
  const consultStates = new Set(['ringing', 'consulting', 'conference']);
  const tr = { state: 'idle', call: '', target: '' };

  function setTransfer(state) {
    tr.state = state;
    render();
  }

  function renderTransfer() {
    const c = st.call;
    const onCall = !!c && c.state === 'in-progress';
    // The panel stays after a transfer, to say it happened, until the next call.
    $('transfer-panel').hidden = !onCall && tr.state !== 'transferred' && tr.state !== 'refused';
    $('transfer-button').disabled = !onCall || tr.state === 'requesting';
    $('transfer-button').setAttribute('aria-expanded', String(tr.state === 'choosing'));
    $('transfer-form').hidden = tr.state !== 'choosing';
    $('transfer-button').hidden = consultStates.has(tr.state);
    $('transfer-actions').hidden = !consultStates.has(tr.state);
    $('transfer-complete').disabled = tr.state === 'ringing';
    $('transfer-conference').disabled = tr.state !== 'consulting';
    let label = transferLabels[tr.state];
    if (tr.state === 'transferred') label = `Transferred to ${tr.target}`;
    else if (consultStates.has(tr.state)) label = `${label}: ${tr.target}`;
    pill($('transfer-state'), tr.state, label);
  }

  // transferOnMessage follows the server's answers to a transfer: the call ends as
  // "transferred", or an error refuses it. A new call starts afresh.
  function transferOnMessage(m) {
    const before = tr.state;
    transferFollow(m);
    if (tr.state !== before) render();
  }
  function transferFollow(m) {
    if (m.type === 'transfer' && m.call_id === tr.call) {
      // A warm transfer's progress, from the instance holding the call.
      tr.state = m.state === 'completed' ? 'transferred' : m.state;
      if (m.to) tr.target = m.to;
    } else if (m.type === 'ended' && m.reason === 'transferred' && m.call_id === tr.call) {
      tr.state = 'transferred';
    } else if (m.type === 'error' && tr.state === 'requesting' && transferRefusals.has(m.code)) {
      tr.state = 'refused';
    } else if (m.type === 'call' && tr.state !== 'requesting' && (m.call_id !== tr.call || tr.state === 'transferred')) {
      // A new call, or the transferred call rung back and taken again.
      tr.state = 'idle';
      tr.call = m.call_id;
    }
  }

  $('transfer-button').addEventListener('click', () => {
    if (!st.call) return;
    tr.call = st.call.call_id;
    setTransfer(tr.state === 'choosing' ? 'idle' : 'choosing');
    if (tr.state === 'choosing') $('transfer-target').focus();
  });
  function transferTo(mode) {
    const target = $('transfer-target').value.trim();
    if (!st.call || !target) return;
    // An agent id, as the admin named it; a number (+...) is passed on for the server to judge.
    tr.call = st.call.call_id;
    tr.target = target.replace(/^agent:/, '');
    const to = target.startsWith('+') || target.startsWith('agent:') ? target : `agent:${target}`;
    clearError();
    send({ type: 'transfer', call_id: tr.call, to, mode });
    setTransfer('requesting');
  }
  $('transfer-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    transferTo('blind');
  });
  $('transfer-warm').addEventListener('click', () => transferTo('warm'));
  $('transfer-complete').addEventListener('click', () => send({ type: 'transfer_complete', call_id: tr.call }));
  $('transfer-cancel').addEventListener('click', () => send({ type: 'transfer_cancel', call_id: tr.call }));
  $('transfer-conference').addEventListener('click', () => send({ type: 'transfer_conference', call_id: tr.call }));

  window.addEventListener('pagehide', () => {
    st.stop = true;
    if (st.ws) st.ws.close();
  });

  render();
  // A sign-in link carries the token in its fragment (#token=...), which never reaches a
  // server or a log; it is taken and wiped from the address bar.
  const fromLink = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromLink) {
    sessionStorage.setItem(TOKEN_KEY, fromLink);
    history.replaceState(null, '', location.pathname + location.search);
  }
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) {
    $('login-token').value = saved;
    signIn(saved);
  }
})();
