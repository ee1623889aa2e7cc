// Switchboard softphone. It signs the agent in over one WebSocket, negotiates one
// RTCPeerConnection with its instance (G.711 mu-law, the only codec the server offers), and
// drives calls with the JSON messages described in docs/agents.md. There is no build step:
// these files are served as they are.
// app.js is the page itself: what the agent sees, the signalling and the PeerConnection, and
// the agent's actions. It loads last (index.html), after the scripts whose functions it uses.
'use strict';

(() => {
  const sp = window.Softphone;
  const {
    $, st, TOKEN_KEY, labels, endedText, failureReasons, showError, clearError, pill, setConnection, clock, send,
    ensureAudio, openMicrophone, attachRemote, startRinger, stopRinger,
    renderWrapUp, fillDispositions, logCall, saveLog, loadLog, forgetDesk, renderLog,
    renderRecording, renderTransfer, transferOnMessage,
  } = sp;
  // What the other scripts call back (function declarations are hoisted: they exist here).
  Object.assign(sp, { render, negotiate, dial });

  // ---- what the agent sees ----------------------------------------------------------------

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

  // ---- signalling -------------------------------------------------------------------------

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

