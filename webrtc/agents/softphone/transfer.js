// The call's controls beyond the basics: recording (start, pause, resume) and transfers
// (blind and warm to another agent or a number, the consult's steps, the conference).
'use strict';

(() => {
  const sp = window.Softphone;
  const { $, st, send, pill, clearError } = sp;
  const render = () => sp.render();

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

  Object.assign(sp, { renderRecording, renderTransfer, transferOnMessage });
})();
