// Dashboard logic: polls the operator API, orders by urgency and age, colours and sounds the counters, sends actions.
const AMBER_MS = 60_000;
const RED_MS = 180_000;
const $ = (s) => document.querySelector(s);
let me = null;
let serverOffsetMs = 0;
let alerts = [];
const seen = new Map(); // alert id -> notifyCount already sounded
let audio = null;

async function api(method, url, body) {
  const r = await fetch(url, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined, credentials: 'same-origin' });
  if (r.status === 401 && url !== '/v1/session') showLogin();
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  if (!r.ok) throw new Error(data?.message ?? `HTTP ${r.status}`);
  return data;
}

function beep() {
  try {
    audio ??= new AudioContext();
    const o = audio.createOscillator();
    const g = audio.createGain();
    o.frequency.value = 880;
    g.gain.value = 0.1;
    o.connect(g).connect(audio.destination);
    o.start();
    o.stop(audio.currentTime + 0.25);
  } catch { /* no audio device: the colours still show it */ }
}

const fmtAge = (ms) => { const s = Math.max(0, Math.floor(ms / 1000)); return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`; };
const fmtTime = (ms) => (ms == null ? '—' : new Date(ms).toLocaleString());
const fmtDur = (ms) => (ms == null ? '—' : fmtAge(ms));
const td = (text, cls) => { const c = document.createElement('td'); c.textContent = text ?? ''; if (cls) c.className = cls; return c; };
const btn = (label, fn) => { const b = document.createElement('button'); b.textContent = label; b.onclick = () => fn().catch((e) => { $('#status').textContent = e.message; }).then(refresh); return b; };

function showLogin() {
  me = null;
  $('#login-view').hidden = false; $('#main-view').hidden = true; $('#logout').hidden = true; $('#who').textContent = '';
}
function showMain() {
  $('#login-view').hidden = true; $('#main-view').hidden = false; $('#logout').hidden = false; $('#who').textContent = `${me.username} (${me.role})`;
}

function renderQueue() {
  const now = Date.now() + serverOffsetMs;
  const body = $('#queue tbody');
  body.replaceChildren();
  for (const a of alerts) {
    const age = now - a.openedAtMs;
    const tr = document.createElement('tr');
    tr.dataset.alertId = a.id;
    tr.className = `${a.state} ${age >= RED_MS ? 'red' : age >= AMBER_MS ? 'amber' : ''}`;
    tr.append(td(fmtAge(age), 'age'), td(a.type), td(a.deviceId), td(a.doseId ?? ''), td(a.state + (a.claimedBy ? ` (${a.claimedBy})` : '')), td(String(a.reportCount)));
    const contact = td('');
    const actions = td('');
    const mine = a.claimedBy === me.username;
    if (a.state === 'open' || (a.state === 'escalated' && me.role !== 'operator')) actions.append(btn('Claim', () => api('POST', `/v1/alerts/${a.id}/claim`, { version: a.version })));
    if (a.state === 'claimed' && mine) {
      contact.append(btn('Show contact', async () => { const c = await api('GET', `/v1/alerts/${a.id}/contact`); contact.textContent = Object.values(c).join(', ') || '(none on file)'; }));
      actions.append(
        btn('Log call', () => api('POST', `/v1/alerts/${a.id}/contact-attempts`, { version: a.version, result: prompt('Result: answered, no_answer, busy, wrong_number', 'no_answer') || 'no_answer' })),
        btn('Escalate', () => api('POST', `/v1/alerts/${a.id}/escalate`, { version: a.version })),
      );
    }
    if ((a.state === 'claimed' && mine) || me.role !== 'operator') {
      const sel = document.createElement('select');
      sel.className = 'outcome';
      for (const o of ['reached_taken', 'reached_will_take', 'home_care_sent', 'not_reached_escalated', 'false_alarm', 'device_repaired', 'other']) sel.append(new Option(o, o));
      actions.append(sel, btn('Resolve', () => api('POST', `/v1/alerts/${a.id}/resolve`, { version: a.version, outcome: sel.value })));
    }
    tr.append(contact, actions);
    body.append(tr);
  }
  $('#queue-count').textContent = `(${alerts.length})`;
}

async function refresh() {
  if (!me) return;
  try {
    const q = await api('GET', '/v1/alerts');
    serverOffsetMs = q.serverTimeMs - Date.now();
    alerts = q.alerts;
    let sound = false;
    for (const a of alerts) {
      if ((seen.get(a.id) ?? 0) < a.notifyCount) sound = true;
      seen.set(a.id, a.notifyCount);
    }
    if (sound) beep();
    renderQueue();
    const devices = await api('GET', '/v1/devices');
    $('#devices tbody').replaceChildren(...devices.map((d) => { const tr = document.createElement('tr'); tr.append(td(d.deviceId), td(d.status, d.status), td(fmtTime(d.lastHeartbeatAtMs)), td(String(d.outboxDepth ?? '—')), td(d.link ?? '—'), td(d.mcu ?? '—'), td(String(d.missingSeqs)), td(d.lowSupply ? 'yes' : ''), td(d.silenced ? 'yes' : '')); return tr; }));
    const silences = await api('GET', '/v1/silences');
    $('#silences tbody').replaceChildren(...silences.map((s) => { const tr = document.createElement('tr'); const end = td(''); if (me.role !== 'operator') end.append(btn('End', () => api('DELETE', `/v1/silences/${s.id}`))); tr.append(td(s.deviceId), td(s.reason), td(fmtTime(s.endsAtMs)), td(s.createdBy), end); return tr; }));
    const report = await api('GET', '/v1/reports/fleet');
    const pct = (x) => (x == null ? '—' : `${(x * 100).toFixed(2)} %`);
    $('#report tbody').replaceChildren(...report.map((r) => { const tr = document.createElement('tr'); tr.append(td(r.month), td(String(r.dosings)), td(String(r.pills)), td(String(r.correct)), td(String(r.green)), td(String(r.yellow)), td(pct(r.accuracy)), td(String(r.missed)), td(pct(r.adherence)), td(String(r.alerts)), td(fmtDur(r.meanClaimMs)), td(fmtDur(r.meanResolveMs))); return tr; }));
    $('#status').textContent = '';
  } catch (e) {
    if (me) $('#status').textContent = `update failed: ${e.message}`;
  }
}

$('#login').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  try {
    me = await api('POST', '/v1/session', { username: f.get('username'), password: f.get('password') });
    $('#login-error').textContent = '';
    showMain();
    await refresh();
  } catch (e) {
    $('#login-error').textContent = e.message;
  }
});
$('#logout').onclick = async () => { await api('DELETE', '/v1/session'); showLogin(); };
$('#silence-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  try {
    await api('POST', '/v1/silences', { deviceId: f.get('deviceId'), reason: f.get('reason'), endsAtMs: Date.now() + serverOffsetMs + Number(f.get('hours')) * 3600_000 });
  } catch (e) { $('#status').textContent = e.message; }
  await refresh();
});

// Counters tick every second between polls; the queue is fetched every two seconds.
function tickAges() {
  const now = Date.now() + serverOffsetMs;
  for (const tr of document.querySelectorAll('#queue tbody tr')) {
    const a = alerts.find((x) => String(x.id) === tr.dataset.alertId);
    if (!a) continue;
    const age = now - a.openedAtMs;
    tr.querySelector('td.age').textContent = fmtAge(age);
    tr.classList.toggle('amber', age >= AMBER_MS && age < RED_MS);
    tr.classList.toggle('red', age >= RED_MS);
  }
}
setInterval(() => { if (me) tickAges(); }, 1000);
setInterval(refresh, 2000);
api('GET', '/v1/session').then((u) => { me = u; showMain(); refresh(); }).catch(showLogin);
