"use strict";
// Monitoring a live call from the wallboard: listen (hear the caller and the agent), whisper
// (only the agent hears you), barge (all hear all), stop. The page opens a WebSocket of its
// own to /agent/monitor (its first message carries the token: never the URL) and one
// PeerConnection to the instance holding the call. Its audio transceiver is sendrecv from the
// start with no microphone on it, so listening asks for no permission; the first whisper or
// barge asks for the microphone and puts it on the sender (replaceTrack), and every change of
// mode after that is one message: nothing is renegotiated. docs/agents.md has the protocol.
const ConsoleMonitor = (() => {
  const { say, $ } = Console;
  // One monitoring at a time: ws, pc, its transceiver, the microphone once asked for, the
  // page's audio, and the analyser the tests read.
  let m = null;
  let audioCtx = null;
  // /admin?raw turns the browser's echo cancellation, noise suppression and gain control off
  // for the microphone, as /agent?raw does: a steady test tone is otherwise taken for noise.
  const RAW_AUDIO = new URLSearchParams(location.search).has("raw");

  // Test hooks: the browser tests read what the page hears.
  window.switchboardMonitor = {
    power(hz) {
      if (!m || !m.analyser) return -Infinity;
      const an = m.analyser;
      const data = new Float32Array(an.frequencyBinCount);
      an.getFloatFrequencyData(data);
      const bin = Math.round(hz * an.fftSize / audioCtx.sampleRate);
      return Math.max(data[bin - 1], data[bin], data[bin + 1]);
    },
    peerState: () => (m && m.pc ? m.pc.connectionState : "none"),
    sending: () => !!(m && m.tx && m.tx.sender.track && m.tx.sender.track.enabled),
  };

  const stateNames = { listen: "listening", whisper: "whispering", barge: "barged" };

  function panelState(state, text) {
    const el = $("monitor-state");
    el.dataset.state = state;
    el.textContent = text || state;
    for (const b of document.querySelectorAll("#monitor-panel button[data-mode]")) {
      b.setAttribute("aria-pressed", String(stateNames[b.dataset.mode] === state));
      b.disabled = !m || !m.live;
    }
    $("monitor-stop").disabled = !m;
  }

  function send(msg) {
    if (m && m.ws.readyState === WebSocket.OPEN) m.ws.send(JSON.stringify(msg));
  }

  // cleanup lets go of everything the monitoring held; the panel stays with its last words.
  function cleanup(state, text) {
    if (!m) return;
    const old = m;
    m = null;
    try { old.ws.close(); } catch (_) { /* closed already */ }
    if (old.pc) old.pc.close();
    if (old.mic) for (const t of old.mic.getTracks()) t.stop();
    if (old.audio) old.audio.srcObject = null;
    panelState(state, text);
  }

  async function negotiate(iceServers) {
    const pc = new RTCPeerConnection({ iceServers: iceServers || [] });
    m.pc = pc;
    m.tx = pc.addTransceiver("audio", { direction: "sendrecv" });
    pc.ontrack = (ev) => {
      const stream = ev.streams[0] || new MediaStream([ev.track]);
      m.audio.srcObject = stream;
      m.audio.play().catch(() => {});
      const source = audioCtx.createMediaStreamSource(stream);
      const an = audioCtx.createAnalyser();
      an.fftSize = 4096;
      an.smoothingTimeConstant = 0.2;
      source.connect(an);
      m.analyser = an;
    };
    pc.onicecandidate = (ev) => send({ type: "candidate", candidate: ev.candidate ? ev.candidate.toJSON() : null });
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "failed") say("the monitoring audio connection failed", true);
    };
    await pc.setLocalDescription(await pc.createOffer());
    send({ type: "offer", sdp: pc.localDescription.sdp });
  }

  async function onMessage(ev, mine) {
    if (m !== mine) return;
    let msg;
    try { msg = JSON.parse(ev.data); } catch (_) { return; }
    switch (msg.type) {
      case "monitor":
        m.live = true;
        panelState(stateNames[msg.mode] || msg.mode);
        if (!m.pc) await negotiate(msg.ice_servers);
        break;
      case "answer":
        await m.pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
        for (const c of m.early.splice(0)) await m.pc.addIceCandidate(c);
        break;
      case "candidate":
        if (!msg.candidate) break;
        if (m.pc && m.pc.remoteDescription) await m.pc.addIceCandidate(msg.candidate); else m.early.push(msg.candidate);
        break;
      case "ended":
        cleanup("ended", msg.reason === "stopped" ? "stopped" : "call ended (" + msg.reason + ")");
        break;
      case "error":
        say("monitoring: " + msg.message, true);
        if (!m.live) cleanup("refused", "refused: " + msg.message);
        break;
    }
  }

  // start monitors call (listening) from a click, which lets the page play audio.
  function start(call, label) {
    if (m) cleanup("stopped");
    if (!audioCtx) audioCtx = new AudioContext();
    audioCtx.resume().catch(() => {});
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/agent/monitor");
    const mine = { ws, call, pc: null, tx: null, mic: null, analyser: null, live: false, early: [], audio: $("monitor-audio") };
    m = mine;
    $("monitor-panel").hidden = false;
    $("monitor-call").textContent = label;
    $("monitor-panel").dataset.call = call;
    panelState("connecting");
    ws.onopen = () => ws.send(JSON.stringify({ type: "monitor", token: Console.token(), call_id: call, mode: "listen" }));
    ws.onmessage = (ev) => onMessage(ev, mine).catch((e) => say("monitoring: " + e.message, true));
    ws.onclose = () => { if (m === mine) cleanup("ended", "monitoring closed"); };
  }

  // mode switches to listen, whisper or barge; talking needs the microphone, asked for once.
  async function mode(name) {
    if (!m || !m.live) return;
    const mine = m;
    if (name !== "listen" && !mine.mic) {
      try {
        const audio = RAW_AUDIO ? { echoCancellation: false, noiseSuppression: false, autoGainControl: false } : true;
        mine.mic = await navigator.mediaDevices.getUserMedia({ audio });
      } catch (e) {
        say("the microphone is needed to " + name + ": " + e.message, true);
        return;
      }
      if (m !== mine) { for (const t of mine.mic.getTracks()) t.stop(); return; }
      await mine.tx.sender.replaceTrack(mine.mic.getAudioTracks()[0]);
    }
    // Listening sends silence: the microphone stays on the sender, switched off.
    if (mine.mic) for (const t of mine.mic.getAudioTracks()) t.enabled = name !== "listen";
    send({ type: "mode", mode: name });
  }

  function stop() {
    if (!m) return;
    send({ type: "stop" });
    cleanup("stopped");
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const b of document.querySelectorAll("#monitor-panel button[data-mode]")) {
      b.addEventListener("click", () => mode(b.dataset.mode).catch((e) => say("monitoring: " + e.message, true)));
    }
    $("monitor-stop").addEventListener("click", stop);
    window.addEventListener("pagehide", stop);
  });

  return { start, stop, active: () => (m ? m.call : "") };
})();
