// Receipts: what went in, came back, was cut for travel, withdrawn or suspended, kept in SQLite and rendered as printable HTML.
//
// The receipt is a paper trail for the pharmacy: pouch labels (as printed on
// the pouches), intake times in the robot's zone and pill counts, so staff can
// match every pouch by hand. Pseudonymous ids only; words from the message
// catalogue (protocol/messages/pharmacy.json), in Danish or English.

import { randomUUID } from 'node:crypto';
import type { Database } from 'better-sqlite3';
import { t, type Lang } from '../../../protocol/src/i18n.js';
import { pouchLabel } from '../roll/types.js';
import type { ReturnedPouch } from './backend.js';

/** What a receipt records: a roll loaded, replaced or unloaded, a travel pack, a withdrawal, a pause begun or ended. */
export type ReceiptKind = 'load' | 'replace' | 'unload' | 'travel' | 'withdraw' | 'pause' | 'resume';
export const RECEIPT_KINDS: readonly ReceiptKind[] = ['load', 'replace', 'unload', 'travel', 'withdraw', 'pause', 'resume'];

export type Receipt = {
  receiptId: string;
  kind: ReceiptKind;
  rollId: string | null;
  staffId: string;
  atMs: number;
  timeZone: string;
  /** The pouches the receipt is about: come back, cut for travel, withdrawn, or suspended by a pause. */
  returned: ReturnedPouch[];
  /** The pouches of the roll loaded (load and replace). */
  loaded?: ReturnedPouch[] | undefined;
  /** The pause's span (pause and resume). */
  pause?: { fromMs: number; untilMs: number } | undefined;
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

/** Stores a receipt; `kind` defaults to an unload's return receipt. */
export function saveReceipt(db: Database, r: Omit<Receipt, 'receiptId' | 'kind'> & { kind?: ReceiptKind }): Receipt {
  const receipt: Receipt = { receiptId: randomUUID(), ...r, kind: r.kind ?? 'unload' };
  const detail = receipt.loaded || receipt.pause ? JSON.stringify({ loaded: receipt.loaded, pause: receipt.pause }) : null;
  db.prepare(
    `INSERT INTO return_receipt (receipt_id, roll_id, staff_id, at_ms, time_zone, returned_json, kind, detail_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(receipt.receiptId, receipt.rollId, receipt.staffId, receipt.atMs, receipt.timeZone, JSON.stringify(receipt.returned), receipt.kind, detail);
  return receipt;
}

export function getReceipt(db: Database, receiptId: string): Receipt | undefined {
  const row = db
    .prepare(`SELECT receipt_id, roll_id, staff_id, at_ms, time_zone, returned_json, kind, detail_json FROM return_receipt WHERE receipt_id = ?`)
    .get(receiptId) as
    | { receipt_id: string; roll_id: string | null; staff_id: string; at_ms: number; time_zone: string; returned_json: string; kind: ReceiptKind; detail_json: string | null }
    | undefined;
  if (!row) return undefined;
  const detail = row.detail_json ? (JSON.parse(row.detail_json) as Pick<Receipt, 'loaded' | 'pause'>) : {};
  return {
    receiptId: row.receipt_id,
    kind: row.kind,
    ...(detail.loaded ? { loaded: detail.loaded } : {}),
    ...(detail.pause ? { pause: detail.pause } : {}),
    rollId: row.roll_id,
    staffId: row.staff_id,
    atMs: row.at_ms,
    timeZone: row.time_zone,
    returned: JSON.parse(row.returned_json) as ReturnedPouch[],
  };
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function formatTime(ms: number, timeZone: string, lang: Lang): string {
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

function pouchTable(id: string, rollId: string | null, list: readonly ReturnedPouch[], lang: Lang, timeZone: string): string {
  const m = (key: string, v?: Record<string, number>) => esc(t(lang, `pharmacy.receipt.${key}`, v));
  if (list.length === 0) return `<p id="${id}-none">${m('none')}</p>`;
  const pills = list.reduce((sum, p) => sum + p.pillCount, 0);
  const rows = list
    .slice()
    .sort((a, b) => a.intakeAtMs - b.intakeAtMs || a.position - b.position)
    .map(
      (p) =>
        `<tr><td>${esc(p.label ?? (rollId ? pouchLabel(rollId, p.position) : String(p.position)))}</td><td class="num">${p.position}</td>` +
        `<td>${esc(formatTime(p.intakeAtMs, timeZone, lang))}</td><td class="num">${p.pillCount}</td></tr>`,
    )
    .join('\n');
  return `<table id="${id}">
<thead><tr><th>${m('label')}</th><th class="num">${m('position')}</th><th>${m('intake')}</th><th class="num">${m('pills')}</th></tr></thead>
<tbody>
${rows}
</tbody>
<tfoot><tr><th colspan="3">${m('total', { count: list.length })}</th><th class="num">${pills}</th></tr></tfoot>
</table>`;
}

/** A self-contained printable page in Danish or English (styles and the print button come from /static, allowed by the page's CSP). */
export function renderReceiptHtml(r: Receipt, lang: Lang): string {
  const m = (key: string) => esc(t(lang, `pharmacy.receipt.${key}`));
  const title = m(`title.${r.kind}`);
  const pause = r.pause
    ? `<dt>${m('pauseSpan')}</dt><dd id="receipt-pause">${esc(formatTime(r.pause.fromMs, r.timeZone, lang))} – ${esc(formatTime(r.pause.untilMs, r.timeZone, lang))}</dd>\n`
    : '';
  // A load lists what went in; a replacement also what came back; the others what the receipt is about.
  const loaded = r.loaded && r.kind === 'replace' ? `<h2>${m('loadedList')}</h2>\n${pouchTable('receipt-loaded', r.rollId, r.loaded, lang, r.timeZone)}\n` : '';
  const main = r.kind === 'load' ? (r.loaded ?? []) : r.returned;
  return `<!doctype html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} ${esc(r.receiptId)}</title>
<link rel="stylesheet" href="/static/receipt.css">
<script src="/static/receipt.js" defer></script>
</head>
<body>
<main class="receipt" data-kind="${r.kind}">
<h1>${title}</h1>
<dl>
<dt>${m('roll')}</dt><dd id="receipt-roll">${esc(r.rollId ?? '—')}</dd>
<dt>${m('at')}</dt><dd>${esc(formatTime(r.atMs, r.timeZone, lang))} (${esc(r.timeZone)})</dd>
${pause}<dt>${m('staff')}</dt><dd>${esc(r.staffId)}</dd>
<dt>${m('receiptNo')}</dt><dd>${esc(r.receiptId)}</dd>
</dl>
${loaded}<h2>${m(`list.${r.kind}`)}</h2>
${pouchTable('receipt-table', r.rollId, main, lang, r.timeZone)}
<p class="signature">${m('signature')}: ______________________________</p>
<p class="no-print"><button type="button" id="print">${m('print')}</button> <a href="/pharmacy${lang === 'en' ? '?lang=en' : ''}">${m('back')}</a></p>
</main>
</body>
</html>
`;
}
