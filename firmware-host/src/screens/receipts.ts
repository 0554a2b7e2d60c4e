// Return receipts: what came back untaken when a roll was unloaded, kept in SQLite and rendered as printable HTML.
//
// The receipt is a paper trail for the pharmacy: pouch labels (as printed on
// the pouches), intake times in the robot's zone and pill counts, so staff can
// match every returned pouch by hand. Pseudonymous ids only.

import { randomUUID } from 'node:crypto';
import type { Database } from 'better-sqlite3';
import { pouchLabel } from '../roll/types.js';
import type { ReturnedPouch } from './backend.js';

export type Receipt = {
  receiptId: string;
  rollId: string | null;
  staffId: string;
  atMs: number;
  timeZone: string;
  returned: ReturnedPouch[];
};

export function migrateReceipts(db: Database): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS return_receipt (
      receipt_id    TEXT PRIMARY KEY,
      roll_id       TEXT,
      staff_id      TEXT NOT NULL,
      at_ms         INTEGER NOT NULL,
      time_zone     TEXT NOT NULL,
      returned_json TEXT NOT NULL
    );
  `);
}

export function saveReceipt(db: Database, r: Omit<Receipt, 'receiptId'>): Receipt {
  const receipt: Receipt = { receiptId: randomUUID(), ...r };
  db.prepare(`INSERT INTO return_receipt (receipt_id, roll_id, staff_id, at_ms, time_zone, returned_json) VALUES (?, ?, ?, ?, ?, ?)`).run(
    receipt.receiptId,
    receipt.rollId,
    receipt.staffId,
    receipt.atMs,
    receipt.timeZone,
    JSON.stringify(receipt.returned),
  );
  return receipt;
}

export function getReceipt(db: Database, receiptId: string): Receipt | undefined {
  const row = db.prepare(`SELECT receipt_id, roll_id, staff_id, at_ms, time_zone, returned_json FROM return_receipt WHERE receipt_id = ?`).get(receiptId) as
    | { receipt_id: string; roll_id: string | null; staff_id: string; at_ms: number; time_zone: string; returned_json: string }
    | undefined;
  if (!row) return undefined;
  return {
    receiptId: row.receipt_id,
    rollId: row.roll_id,
    staffId: row.staff_id,
    atMs: row.at_ms,
    timeZone: row.time_zone,
    returned: JSON.parse(row.returned_json) as ReturnedPouch[],
  };
}

const TEXT = {
  da: {
    title: 'Returkvittering',
    roll: 'Rulle',
    unloaded: 'Taget ud',
    staff: 'Medarbejder',
    receiptNo: 'Kvittering nr.',
    label: 'Pose',
    position: 'Plads',
    intake: 'Indtagelse',
    pills: 'Tabletter',
    total: 'I alt',
    pouches: (n: number) => (n === 1 ? '1 pose' : `${n} poser`),
    none: 'Ingen poser kom retur.',
    print: 'Udskriv',
    back: 'Tilbage',
    signature: 'Underskrift',
  },
  en: {
    title: 'Return receipt',
    roll: 'Roll',
    unloaded: 'Unloaded',
    staff: 'Staff',
    receiptNo: 'Receipt no.',
    label: 'Pouch',
    position: 'Position',
    intake: 'Intake',
    pills: 'Pills',
    total: 'Total',
    pouches: (n: number) => (n === 1 ? '1 pouch' : `${n} pouches`),
    none: 'No pouches came back.',
    print: 'Print',
    back: 'Back',
    signature: 'Signature',
  },
} as const;

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function formatTime(ms: number, timeZone: string, lang: 'da' | 'en'): string {
  return new Intl.DateTimeFormat(lang === 'da' ? 'da-DK' : 'en-GB', {
    timeZone,
    weekday: 'short',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
  }).format(new Date(ms));
}

/** A self-contained printable page (styles and the print button come from /static, allowed by the page's CSP). */
export function renderReceiptHtml(r: Receipt, lang: 'da' | 'en'): string {
  const t = TEXT[lang];
  const pills = r.returned.reduce((sum, p) => sum + p.pillCount, 0);
  const rows = r.returned
    .slice()
    .sort((a, b) => a.position - b.position)
    .map(
      (p) =>
        `<tr><td>${esc(r.rollId ? pouchLabel(r.rollId, p.position) : String(p.position))}</td><td class="num">${p.position}</td>` +
        `<td>${esc(formatTime(p.intakeAtMs, r.timeZone, lang))}</td><td class="num">${p.pillCount}</td></tr>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${t.title} ${esc(r.receiptId)}</title>
<link rel="stylesheet" href="/static/receipt.css">
<script src="/static/receipt.js" defer></script>
</head>
<body>
<main class="receipt">
<h1>${t.title}</h1>
<dl>
<dt>${t.roll}</dt><dd id="receipt-roll">${esc(r.rollId ?? '—')}</dd>
<dt>${t.unloaded}</dt><dd>${esc(formatTime(r.atMs, r.timeZone, lang))} (${esc(r.timeZone)})</dd>
<dt>${t.staff}</dt><dd>${esc(r.staffId)}</dd>
<dt>${t.receiptNo}</dt><dd>${esc(r.receiptId)}</dd>
</dl>
${
  r.returned.length === 0
    ? `<p id="receipt-none">${t.none}</p>`
    : `<table id="receipt-table">
<thead><tr><th>${t.label}</th><th class="num">${t.position}</th><th>${t.intake}</th><th class="num">${t.pills}</th></tr></thead>
<tbody>
${rows}
</tbody>
<tfoot><tr><th colspan="3">${t.total}: ${t.pouches(r.returned.length)}</th><th class="num">${pills}</th></tr></tfoot>
</table>`
}
<p class="signature">${t.signature}: ______________________________</p>
<p class="no-print"><button type="button" id="print">${t.print}</button> <a href="/pharmacy${lang === 'en' ? '?lang=en' : ''}">${t.back}</a></p>
</main>
</body>
</html>
`;
}
