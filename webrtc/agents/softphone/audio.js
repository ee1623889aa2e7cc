// The softphone's audio: the AudioContext, the microphone and the device pickers with the
// microphone's level meter, the far end's audio and its analyser (the tests' ears), the ring.
'use strict';

(() => {
  const sp = window.Softphone;
  const { $, st, RAW_AUDIO, showError, clearError } = sp;
  const negotiate = () => sp.negotiate();

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

  $('device-mic').addEventListener('change', (ev) => switchMic(ev.target.value));
  $('device-speaker').addEventListener('change', (ev) => {
    $('remote-audio').setSinkId(ev.target.value).catch((err) => {
      showError(`That speaker could not be used (${err && err.name}).`, 'speaker');
      refreshDevices();
    });
  });
  if (navigator.mediaDevices) navigator.mediaDevices.addEventListener('devicechange', refreshDevices);

  Object.assign(sp, { ensureAudio, openMicrophone, refreshDevices, attachRemote, startRinger, stopRinger });
})();
