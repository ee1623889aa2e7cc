// The agent's desk after a call: the wrap-up (notes and disposition, saved to the call's
// record) and the call log with redial. Both outlive a reload of the tab.
'use strict';

(() => {
  const sp = window.Softphone;
  const { $, st, send, clock } = sp;
  const render = () => sp.render();
  const dial = (number) => sp.dial(number);

  // The call log and the wrap-up being written outlive a reload of the tab (not the tab, and
  // not a sign-out: the next agent at this browser does not see them).
  const DESK_KEY = 'switchboard.desk';
  const LOG_MAX = 20;

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

  Object.assign(sp, { renderWrapUp, fillDispositions, logCall, saveLog, loadLog, forgetDesk, renderLog });
})();
