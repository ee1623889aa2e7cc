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
  // The call log and the wrap-up being written outlive a reload of the tab (not the tab, and
  // not a sign-out: the next agent at this browser does not see them).
  const DESK_KEY = 'switchboard.desk';
  const LOG_MAX = 20;

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

  function render() {
    const signedIn = !!st.agent;
    $('login-panel').hidden = signedIn;
    $('desk-panel').hidden = !signedIn;
    if (!signedIn) return;
    $('agent-name').textContent = st.agent.name || st.agent.id;
    const a = st.availability || {};
    // On hold shows wherever the call's state shows: the badge says so too.
    const held = a.state === 'busy' && !!st.call && !!st.call.held;
    pill($('availability-state'), a.state, held ? labels['on-hold'] : (labels[a.state] || a.state));
    $('availability-state').dataset.held = String(held);
    renderAvailabilitySelect(a, held);

    const r = st.ringing;
    $('incoming-panel').hidden = !r;
    if (r) $('incoming-from').textContent = r.from || 'Unknown caller';

    const c = st.call;
    $('call-panel').hidden = !c;
    if (c) {
      const inbound = c.direction === 'inbound';
      $('call-direction').textContent = inbound ? 'Call from' : 'Call to';
      $('call-peer').textContent = (inbound ? c.from : c.to) || '';
      if (c.held) pill($('call-state'), 'on-hold', labels['on-hold']);
      else pill($('call-state'), c.state, c.state === 'busy' ? labels.busyCall : (labels[c.state] || c.state));
      $('mute-button').setAttribute('aria-pressed', String(!!c.muted));
      $('mute-button').textContent = c.muted ? 'Unmute' : 'Mute';
      $('hold-button').setAttribute('aria-pressed', String(!!c.held));
      $('hold-button').textContent = c.held ? 'Resume' : 'Hold';
      $('call-digits').textContent = st.digits ? `Caller pressed ${st.digits}` : '';
      renderRecording(c);
    }
    const online = !!st.ws && st.ws.readyState === WebSocket.OPEN;
    $('dial-button').disabled = !online || !!c || !!r;
    $('answer-button').disabled = !online;
    renderTransfer();
    renderWrapUp();
    tick();
  }

  // The availability control always says what the badge says. Available and away are the
  // agent's to choose; on a call or in wrap-up the control shows that state (the badge's
  // words) with the state asked for after it ("On a call · Away after this call"), and offers
  // available and away for after the call (on a call) or at once (in wrap-up, which ends it).
  function renderAvailabilitySelect(a, held) {
    const sel = $('availability-select');
    const state = a.state || '';
    const current = held ? labels['on-hold'] : (labels[state] || state);
    const then = a.next ? ` · ${labels[a.next] || a.next} after this call` : '';
    for (const opt of sel.options) {
      const choosable = opt.value === 'available' || opt.value === 'away';
      if (!choosable) {
        opt.hidden = opt.value !== state;
        opt.textContent = opt.value === state ? current + then : labels[opt.value];
      } else if (state === 'busy') {
        opt.textContent = `${labels[opt.value]} after this call`;
      } else if (state === 'wrap-up') {
        opt.textContent = `${labels[opt.value]} now`;
      } else {
        opt.textContent = labels[opt.value];
      }
    }
    if ([...sel.options].some((o) => o.value === state)) sel.value = state;
    sel.dataset.state = state;
    sel.dataset.next = a.next || '';
  }

  function renderWrapUp() {
    const w = st.wrap;
    $('wrapup-panel').hidden = !w;
    if (!w) return;
    $('wrapup-call').textContent = w.number ? `· ${w.number}` : '';
    const status = $('wrapup-status');
    status.dataset.state = w.status || '';
    status.textContent = w.message || '';
    $('wrapup-save').disabled = w.status === 'saving' || !st.ws;
    $('wrapup-count').textContent = `${[...$('wrapup-notes').value].length} / ${st.maxNotes}`;
  }

  function fillDispositions(list) {
    const sel = $('wrapup-disposition');
    const keep = sel.value;
    while (sel.options.length > 1) sel.lastChild.remove();
    for (const d of list) {
      const o = document.createElement('option');
      o.value = d;
      o.textContent = d;
      sel.append(o);
    }
    if (list.includes(keep)) sel.value = keep;
    if (st.pendingDisposition && list.includes(st.pendingDisposition)) sel.value = st.pendingDisposition;
    st.pendingDisposition = '';
  }

  // tick updates what changes with time: the call timer and the wrap-up countdown.
  function tick() {
    const c = st.call;
    $('call-timer').textContent = c && st.callStart ? clock(Date.now() - st.callStart) : '0:00';
    const a = st.availability || {};
    let detail = '';
    if (a.state === 'wrap-up' && a.until) {
      detail = `${a.next === 'away' ? 'away' : 'available'} in ${clock(Date.parse(a.until) - Date.now())}`;
    } else if (a.next) {
      detail = `${labels[a.next] || a.next} after this call`;
    }
    $('availability-detail').textContent = detail;
  }
  setInterval(tick, 250);

  // logCall adds a call to the log: who, which way, when, how long it was connected (whole
  // seconds), how it ended; the disposition is filled in when the wrap-up is saved.
  function logCall(entry) {
    st.log = [entry, ...st.log.filter((e) => e.call_id !== entry.call_id)].slice(0, LOG_MAX);
    saveLog();
    renderLog();
  }
  function saveLog() {
    const desk = { log: st.log, wrap: st.wrap, notes: $('wrapup-notes').value, disposition: $('wrapup-disposition').value };
    try { sessionStorage.setItem(DESK_KEY, JSON.stringify(desk)); } catch { /* full or blocked: the page keeps them */ }
  }
  function loadLog() {
    let desk = {};
    try { desk = JSON.parse(sessionStorage.getItem(DESK_KEY) || '{}') || {}; } catch { desk = {}; }
    st.log = Array.isArray(desk.log) ? desk.log.slice(0, LOG_MAX) : [];
    st.wrap = desk.wrap && desk.wrap.call_id ? desk.wrap : null;
    if (st.wrap && st.wrap.status === 'saving') Object.assign(st.wrap, { status: '', message: '' }); // its answer went with the page
    $('wrapup-notes').value = typeof desk.notes === 'string' ? desk.notes : '';
    st.pendingDisposition = desk.disposition || ''; // chosen once the list arrives
  }
  function forgetDesk() {
    sessionStorage.removeItem(DESK_KEY);
    st.log = [];
    st.wrap = null;
    $('wrapup-notes').value = '';
    $('wrapup-disposition').value = '';
    renderLog();
  }
  function renderLog() {
    const ol = $('call-log');
    ol.replaceChildren(...st.log.map((e) => {
      const li = document.createElement('li');
      li.className = 'entry';
      li.dataset.testid = 'call-log-entry';
      li.dataset.callId = e.call_id || '';
      li.dataset.number = e.number || '';
      li.dataset.direction = e.direction || '';
      li.dataset.duration = String(e.duration || 0);
      li.dataset.disposition = e.disposition || '';
      const what = document.createElement('span');
      what.className = 'what';
      const arrow = e.direction === 'inbound' ? '←' : '→';
      what.textContent = `${new Date(e.at).toLocaleTimeString()} ${arrow} ${e.number || '?'} · ${clock(e.duration * 1000)} · ${e.outcome}`;
      if (e.disposition) {
        const d = document.createElement('span');
        d.className = 'disp';
        d.textContent = ` · ${e.disposition}`;
        what.append(d);
      }
      const redial = document.createElement('button');
      redial.type = 'button';
      redial.textContent = 'Call';
      redial.title = `Call ${e.number} again`;
      redial.dataset.testid = 'call-log-redial';
      redial.disabled = !e.number || !/^\+[1-9][0-9]{7,14}$/.test(e.number);
      redial.addEventListener('click', () => dial(e.number));
      li.append(what, redial);
      return li;
    }));
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
      startMeter(st.mic);
      refreshDevices();
    } catch (err) {
      st.micError = err && err.name === 'NotAllowedError'
        ? 'Microphone access was denied. Allow the microphone for this site, then sign in again; callers cannot hear you.'
        : `No microphone available (${err && err.name}); callers cannot hear you.`;
      showError(st.micError, 'microphone');
    }
  }

  // ---- devices and the microphone's level ------------------------------------------------

  function micConstraints(deviceId) {
    const audio = RAW_AUDIO ? { echoCancellation: false, noiseSuppression: false, autoGainControl: false } : {};
    if (deviceId) audio.deviceId = { exact: deviceId };
    return { audio: Object.keys(audio).length ? audio : true };
  }

  // refreshDevices lists the microphones and speakers (their names are known once the
  // microphone is granted) and marks the ones in use.
  async function refreshDevices() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
    let devices = [];
    try { devices = await navigator.mediaDevices.enumerateDevices(); } catch { return; }
    const track = st.mic && st.mic.getAudioTracks()[0];
    const current = track && track.getSettings ? track.getSettings().deviceId : '';
    fillDevices($('device-mic'), devices.filter((d) => d.kind === 'audioinput'), current, 'Microphone');
    const speaker = $('device-speaker');
    if (typeof $('remote-audio').setSinkId !== 'function') {
      speaker.replaceChildren(new Option('Browser default (this browser cannot switch)', ''));
      speaker.disabled = true;
      return;
    }
    fillDevices(speaker, devices.filter((d) => d.kind === 'audiooutput'), $('remote-audio').sinkId || speaker.value, 'Speaker');
  }
  function fillDevices(sel, list, current, kind) {
    sel.replaceChildren(...list.map((d, i) => new Option(d.label || `${kind} ${i + 1}`, d.deviceId)));
    sel.disabled = list.length === 0;
    if (list.length === 0) sel.replaceChildren(new Option(`No ${kind.toLowerCase()} found`, ''));
    if (current && list.some((d) => d.deviceId === current)) sel.value = current;
  }

  // switchMic opens the chosen microphone and puts it on the live call without renegotiating
  // (RTCRtpSender.replaceTrack), then lets the old one go.
  async function switchMic(deviceId) {
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia(micConstraints(deviceId));
    } catch (err) {
      showError(`That microphone could not be opened (${err && err.name}).`, 'microphone');
      refreshDevices();
      return;
    }
    const old = st.mic;
    st.mic = stream;
    const track = stream.getAudioTracks()[0];
    const senders = st.pc ? st.pc.getSenders().filter((x) => x.track && x.track.kind === 'audio') : [];
    if (senders.length) await Promise.all(senders.map((x) => x.replaceTrack(track)));
    else if (st.pc && st.ws) negotiate().catch(() => {}); // no microphone before: offer to send now
    if (old) old.getTracks().forEach((t) => t.stop());
    clearError('microphone');
    st.micError = '';
    startMeter(stream);
    refreshDevices();
  }

  // startMeter feeds the level meter from the microphone: the RMS of the last 2048 samples,
  // ten times a second, as the meter's value and its data-level.
  function startMeter(stream) {
    if (!st.audioCtx) return;
    if (st.micMeter) {
      clearInterval(st.micMeter.timer);
      st.micMeter.source.disconnect();
    }
    const source = st.audioCtx.createMediaStreamSource(stream);
    const an = st.audioCtx.createAnalyser();
    an.fftSize = 2048;
    source.connect(an);
    const buf = new Float32Array(an.fftSize);
    const timer = setInterval(() => {
      an.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const v of buf) sum += v * v;
      const level = Math.min(1, Math.sqrt(sum / buf.length));
      st.micLevel = level;
      const meter = $('mic-level');
      meter.value = level;
      meter.dataset.level = level.toFixed(3);
    }, 100);
    st.micMeter = { source, timer };
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
        st.dispositions = m.dispositions || [];
        st.recordingMode = m.recording || '';
        st.maxNotes = m.max_notes || 2000;
        $('wrapup-notes').maxLength = st.maxNotes;
        fillDispositions(st.dispositions);
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
        // The carrier's last word on a call can cross its end on the way here (the server
        // reports both as they come): a call already ended stays ended.
        if (st.ended.includes(m.call_id)) break;
        if (st.ringing && st.ringing.call_id === m.call_id) {
          st.ringing = null;
          stopRinger();
        }
        setCall(m, false);
        render();
        break;
      case 'ended': {
        st.ended = [m.call_id, ...st.ended.filter((id) => id !== m.call_id)].slice(0, 20);
        const text = endedText[m.reason] || `Call ended (${m.reason})`;
        if (st.ringing && st.ringing.call_id === m.call_id) {
          const r = st.ringing;
          st.ringing = null;
          stopRinger();
          logCall({ call_id: r.call_id, number: r.from, direction: 'inbound', at: Date.now(), duration: 0,
            outcome: `${m.reason === 'declined' ? 'Declined' : 'Missed'}: ${text}` });
        }
        if (st.call && st.call.call_id === m.call_id) {
          const c = st.call;
          const number = (c.direction === 'inbound' ? c.from : c.to) || '';
          const duration = st.callStart ? Math.max(0, Math.round((Date.now() - st.callStart) / 1000)) : 0;
          const w = st.wrap && st.wrap.call_id === c.call_id ? st.wrap : null;
          logCall({ call_id: c.call_id, number, direction: c.direction, at: st.callStart || Date.now(), duration,
            outcome: text, disposition: w && w.status === 'saved' ? w.disposition : '' });
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
      case 'wrapup-saved':
        if (st.wrap && st.wrap.call_id === m.call_id) {
          st.wrap.status = 'saved';
          st.wrap.disposition = m.disposition;
          st.wrap.message = `Saved at ${new Date(m.wrapped_up_at).toLocaleTimeString()}`;
        }
        st.log.forEach((e) => { if (e.call_id === m.call_id) e.disposition = m.disposition; });
        saveLog();
        renderLog();
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
    if (c && c.state === 'in-progress' && (!st.wrap || st.wrap.call_id !== c.call_id)) {
      // A new connected call: its wrap-up can be written from now on, the last one's is done.
      st.wrap = { call_id: c.call_id, number: (c.direction === 'inbound' ? c.from : c.to) || '', status: '', message: '' };
      $('wrapup-notes').value = '';
      $('wrapup-disposition').value = '';
      saveLog();
    }
  }

  function onError(m) {
    // A refused wrap-up is shown in the wrap-up panel, beside what the agent typed.
    if (st.wrap && m.call_id === st.wrap.call_id && ['invalid', 'not_found', 'closed', 'unavailable'].includes(m.code)) {
      st.wrap.status = 'error';
      st.wrap.message = m.message || m.code;
      render();
      return;
    }
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
    if (forget) {
      sessionStorage.removeItem(TOKEN_KEY);
      forgetDesk();
    }
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
  $('device-mic').addEventListener('change', (ev) => switchMic(ev.target.value));
  $('device-speaker').addEventListener('change', (ev) => {
    $('remote-audio').setSinkId(ev.target.value).catch((err) => {
      showError(`That speaker could not be used (${err && err.name}).`, 'speaker');
      refreshDevices();
    });
  });
  if (navigator.mediaDevices) navigator.mediaDevices.addEventListener('devicechange', refreshDevices);
  $('availability-select').addEventListener('change', (ev) => {
    const want = ev.target.value;
    if (want === 'available' || want === 'away') send({ type: 'availability', state: want });
    render(); // until the server answers, the control goes on showing the state the agent is in
  });
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

  // Recording: the server records every call (all) or the calls the agent starts
  // (on-demand), or none (the controls stay hidden). The toggle starts, pauses (taking a
  // card number) and resumes; the state shown is the one the server says is in force.
  const recordLabels = { recording: 'Recording', paused: 'Recording paused', off: 'Not recorded' };
  function renderRecording(c) {
    const on = !!st.recordingMode;
    const state = c.recording || 'off';
    const live = c.state === 'in-progress';
    $('record-state').hidden = !on;
    $('record-toggle').hidden = !on;
    pill($('record-state'), state, recordLabels[state] || state);
    $('record-toggle').textContent = state === 'recording' ? 'Pause recording' : state === 'paused' ? 'Resume recording' : 'Record';
    $('record-toggle').disabled = !live;
    $('record-toggle').setAttribute('aria-pressed', String(state === 'recording'));
  }
  $('record-toggle').addEventListener('click', () => {
    if (!st.call) return;
    send({ type: 'record', state: st.call.recording === 'recording' ? 'paused' : 'recording' });
  });

  const normalize = (s) => s.replace(/[\s().-]/g, '');
  function dial(number) {
    const to = normalize(number);
    if (!/^\+[1-9][0-9]{7,14}$/.test(to)) {
      showError('Enter the number with + and the country code, e.g. +15551234567.', 'dial');
      return;
    }
    if (st.call || st.ringing) {
      showError('Finish the call first.', 'dial');
      return;
    }
    clearError('dial');
    if (st.micError) showError(st.micError, 'microphone');
    $('dial-number').value = to;
    send({ type: 'dial', to });
  }
  $('dial-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    dial($('dial-number').value);
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
    // An agent id, as the admin named it, or a number (+...), passed on for the server to judge
    // (a number can be transferred blind only).
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

  $('wrapup-notes').addEventListener('input', () => {
    if (st.wrap && st.wrap.status === 'saved') {
      st.wrap.status = '';
      st.wrap.message = 'Not saved yet';
    }
    saveLog();
    render();
  });
  $('wrapup-disposition').addEventListener('change', () => $('wrapup-notes').dispatchEvent(new Event('input')));
  $('wrapup-save').addEventListener('click', () => {
    const w = st.wrap;
    if (!w) return;
    const disposition = $('wrapup-disposition').value;
    const notes = $('wrapup-notes').value;
    if (!disposition) {
      w.status = 'error';
      w.message = 'Choose a disposition.';
    } else if ([...notes].length > st.maxNotes) {
      w.status = 'error';
      w.message = `Notes have at most ${st.maxNotes} characters.`;
    } else {
      w.status = 'saving';
      w.message = 'Saving…';
      send({ type: 'wrapup', call_id: w.call_id, notes, disposition });
    }
    render();
  });

  // Alt+A answers, Alt+H hangs up (or declines a ringing call). By the key's position
  // (code), so Option+A on a Mac, which types "å", works too; never while the agent types in
  // a text field, where the keys are the agent's words.
  document.addEventListener('keydown', (ev) => {
    if (!ev.altKey || ev.ctrlKey || ev.metaKey || ev.repeat) return;
    const t = ev.target;
    if (t && (t.tagName === 'TEXTAREA' || (t.tagName === 'INPUT' && t.type !== 'button') || t.isContentEditable)) return;
    if (ev.code === 'KeyA' && st.ringing) {
      ev.preventDefault();
      send({ type: 'answer', call_id: st.ringing.call_id });
    } else if (ev.code === 'KeyH' && (st.call || st.ringing)) {
      ev.preventDefault();
      if (st.call) send({ type: 'hangup', call_id: st.call.call_id });
      else send({ type: 'decline', call_id: st.ringing.call_id });
    }
  });

  window.addEventListener('pagehide', () => {
    st.stop = true;
    if (st.ws) st.ws.close();
  });

  loadLog();
  renderLog();
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
