// The soak report as one self-contained HTML page: verdict against the reference robot, charts, reasons.

import type { SoakReport } from './report.js';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const pct = (x: number, digits = 3) => `${(x * 100).toFixed(digits)} %`;
const int = (n: number) => n.toLocaleString('en-GB');

const COLOURS = { correct: '#1b7f3b', green: '#5aa02c', yellow: '#b88600', red: '#c0392b', reference: '#1f4e99' };

/** Horizontal bars of the error classes (correct is shown as text: it would dwarf the rest). */
function classChart(r: SoakReport): string {
  const rows = (['green', 'yellow', 'red'] as const).map((k) => ({ k, n: r.outcomes[k] }));
  const max = Math.max(1, ...rows.map((x) => x.n));
  const bars = rows
    .map(({ k, n }, i) => {
      const w = Math.round((n / max) * 420);
      const y = 10 + i * 34;
      return `<text x="0" y="${y + 17}" font-size="14">${k}</text>
<rect x="70" y="${y}" width="${Math.max(w, n > 0 ? 2 : 0)}" height="24" fill="${COLOURS[k]}"/>
<text x="${78 + w}" y="${y + 17}" font-size="14">${int(n)} (${pct(r.dosings ? n / r.dosings : 0, 4)})</text>`;
    })
    .join('\n');
  return `<svg viewBox="0 0 640 116" width="640" height="116" role="img" aria-label="dosings per error class">${bars}</svg>`;
}

/** Accuracy with its 95 % interval as dosings accumulate, against the reference's 99.88 %. */
function accuracyChart(r: SoakReport): string {
  const W = 640;
  const H = 260;
  const L = 64;
  const B = 30;
  const pts = r.series;
  if (pts.length === 0) return '<p>No dosings ran.</p>';
  const lows = pts.map((p) => p.low);
  const yMin = Math.min(r.reference.accuracy - 0.001, ...lows.slice(Math.floor(lows.length / 10)));
  const yMax = 1;
  const xMax = pts.at(-1)!.dosings;
  const x = (n: number) => L + ((W - L - 10) * n) / xMax;
  const y = (a: number) => 10 + ((H - B - 10) * (yMax - Math.max(a, yMin))) / (yMax - yMin);
  const band = [...pts.map((p) => `${x(p.dosings).toFixed(1)},${y(p.high).toFixed(1)}`), ...[...pts].reverse().map((p) => `${x(p.dosings).toFixed(1)},${y(p.low).toFixed(1)}`)].join(' ');
  const line = pts.map((p) => `${x(p.dosings).toFixed(1)},${y(p.accuracy).toFixed(1)}`).join(' ');
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => yMin + (yMax - yMin) * f);
  return `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="accuracy as dosings accumulate">
${ticks.map((t) => `<line x1="${L}" x2="${W - 10}" y1="${y(t)}" y2="${y(t)}" stroke="#ddd"/><text x="${L - 6}" y="${y(t) + 4}" font-size="11" text-anchor="end">${pct(t, 2)}</text>`).join('\n')}
<polygon points="${band}" fill="${COLOURS.correct}" opacity="0.18"/>
<polyline points="${line}" fill="none" stroke="${COLOURS.correct}" stroke-width="2"/>
<line x1="${L}" x2="${W - 10}" y1="${y(r.reference.accuracy)}" y2="${y(r.reference.accuracy)}" stroke="${COLOURS.reference}" stroke-dasharray="6 4" stroke-width="2"/>
<text x="${W - 12}" y="${y(r.reference.accuracy) - 6}" font-size="12" text-anchor="end" fill="${COLOURS.reference}">reference ${pct(r.reference.accuracy, 2)}</text>
<text x="${L}" y="${H - 8}" font-size="11">0</text><text x="${W - 10}" y="${H - 8}" font-size="11" text-anchor="end">${int(xMax)} dosings</text>
</svg>`;
}

function reasonsTable(r: SoakReport): string {
  const rows = [
    ...Object.entries(r.reasons.yellow).map(([k, n]) => ['yellow', k, n] as const),
    ...Object.entries(r.reasons.red).map(([k, n]) => ['red', k, n] as const),
  ];
  if (rows.length === 0) return '<p>No yellow or red dosings.</p>';
  return `<table><thead><tr><th>class</th><th>reason</th><th>dosings</th></tr></thead><tbody>
${rows.map(([c, k, n]) => `<tr><td><span class="dot" style="background:${COLOURS[c]}"></span>${c}</td><td><code>${esc(k)}</code></td><td class="num">${int(n)}</td></tr>`).join('\n')}
</tbody></table>`;
}

export function renderHtml(r: SoakReport): string {
  const verdictText = {
    'beats-reference': 'This build beats the reference robot: its whole 95 % interval lies above 99.88 %.',
    'below-reference': 'This build is below the reference robot: its whole 95 % interval lies under 99.88 %.',
    'not-distinguishable': 'Not yet distinguishable from the reference robot: the 95 % interval contains 99.88 %. Run more dosings.',
  }[r.verdict];
  const verdictColour = r.verdict === 'beats-reference' ? COLOURS.correct : r.verdict === 'below-reference' ? COLOURS.red : COLOURS.yellow;
  const redLine = r.outcomes.red === 0 ? 'No red dosing: every wrong dose was registered and shown.' : `${int(r.outcomes.red)} red dosings: wrong doses the robot did not register.`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dosis soak report — seed ${r.seed}, ${esc(r.profile)}</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#111;padding:0 1rem}
h1{font-size:1.5rem}.verdict{border-left:6px solid ${verdictColour};padding:.6rem 1rem;background:#f6f6f6;font-size:1.15rem}
.side{display:grid;grid-template-columns:1fr 1fr;gap:1rem}.card{border:1px solid #ccc;border-radius:6px;padding:.8rem 1rem}
.big{font-size:2rem;font-weight:700}table{border-collapse:collapse}td,th{padding:.25rem .8rem;border-bottom:1px solid #ddd;text-align:left}
.num{text-align:right;font-variant-numeric:tabular-nums}.dot{display:inline-block;width:.8em;height:.8em;border-radius:50%;margin-right:.4em}
.violations{color:${COLOURS.red}}
</style></head><body>
<h1>dosis soak report</h1>
<p class="verdict">${verdictText} ${redLine}</p>
<div class="side">
<div class="card"><div>This build</div><div class="big">${pct(r.accuracy)}</div>
<div>95 % interval ${pct(r.accuracyCi95.low)} – ${pct(r.accuracyCi95.high)}</div>
<div>${int(r.dosings)} dosings, ${int(r.pills)} pills</div></div>
<div class="card"><div>Reference robot (2018–2021)</div><div class="big">${pct(r.reference.accuracy, 2)}</div>
<div>&nbsp;</div><div>${int(r.reference.dosings)} dosings, ${int(r.reference.pills)} pills</div></div>
</div>
<h2>Classes</h2>
<p>correct ${int(r.outcomes.correct)} · green ${int(r.outcomes.green)} · yellow ${int(r.outcomes.yellow)} · red ${int(r.outcomes.red)} · doses not taken by the citizen (missed, not dosings) ${int(r.missed)}</p>
${r.care ? `<p class="care">out of dispensing by the staff (not dosings, not missed): suspended ${int(r.care.doses.suspended)} · travel ${int(r.care.doses.travel)} · withdrawn ${int(r.care.doses.withdrawn)} — from ${int(r.care.actions.pause)} pauses (${int(r.care.actions.resumeEarly)} ended early), ${int(r.care.actions.travel)} travel packs, ${int(r.care.actions.withdrawFromTime + r.care.actions.withdrawByLabel)} withdrawals</p>\n` : ''}${classChart(r)}
<h2>Accuracy as dosings accumulate</h2>
${accuracyChart(r)}
<h2>Reasons</h2>
${reasonsTable(r)}
<h2>Safety invariants</h2>
${r.invariantViolations.length === 0 ? '<p>Every invariant held after every dosing.</p>' : `<ul class="violations">${r.invariantViolations.slice(0, 100).map((v) => `<li>invariant ${v.invariant}, dosing ${v.dosing}: ${esc(v.detail)}</li>`).join('')}</ul>`}
<h2>Run</h2>
<table><tbody>
<tr><td>seed</td><td>${r.seed}</td></tr><tr><td>profile</td><td>${esc(r.profile)}</td></tr>
<tr><td>transport</td><td>${r.transport}</td></tr><tr><td>workers</td><td>${r.workers}</td></tr>
<tr><td>wall time</td><td>${r.wallSeconds.toFixed(1)} s (${Math.round(r.dosingsPerSecond)} dosings/s)</td></tr>
${r.interrupted ? '<tr><td>stopped</td><td>interrupted before all dosings ran</td></tr>' : ''}
</tbody></table>
</body></html>
`;
}
