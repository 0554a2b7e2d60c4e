// Daylight-saving days: the March and October 2027 example rolls give the documented UTC intake times, worked out by hand here.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatLocal, isRealDate, isValidTimeZone, resolveLocalTime } from '../../../firmware-host/src/roll/local-time.js';
import { validateManifest } from '../../../firmware-host/src/roll/validate.js';

const example = (name: string) => readFileSync(new URL(`../../../firmware-host/examples/${name}.json`, import.meta.url));
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
const TIMES = ['02:30', '08:00', '14:00', '20:00'];

/** Every pouch's UTC time from its local date and time and the offset (hours) in force by the documented rule. */
function expectedUtc(dates: string[], offsetFor: (date: string, time: string) => number): string[] {
  const out: string[] = [];
  for (const date of dates) {
    for (const time of TIMES) {
      const [y, mo, d] = date.split('-').map(Number) as [number, number, number];
      const [h, mi] = time.split(':').map(Number) as [number, number];
      out.push(iso(Date.UTC(y, mo - 1, d, h - offsetFor(date, time), mi)));
    }
  }
  return out;
}

describe('DST rolls in Europe/Copenhagen, 2027', () => {
  it('March: 02:30 on Sunday 28 March does not exist and is taken as 03:30 CEST = 01:30 UTC, with one dst_gap warning', () => {
    const r = validateManifest(example('roll-dst-march-2027'), { slotCount: 56, nowMs: Date.parse('2027-03-01T00:00:00Z') });
    expect(r.ok).toBe(true);
    expect(r.problems.map((p) => `${p.path} ${p.severity} ${p.code}`)).toEqual(['/pouches/12/intakeTime warning dst_gap']);
    // CET (+1) up to the change at 02:00 local on the 28th; the missing 02:30 keeps the offset before the gap; CEST (+2) after.
    const dates = ['2027-03-25', '2027-03-26', '2027-03-27', '2027-03-28', '2027-03-29', '2027-03-30', '2027-03-31'];
    const hand = expectedUtc(dates, (date, time) => (date < '2027-03-28' || (date === '2027-03-28' && time < '03:00') ? 1 : 2));
    expect(r.pouches.map((p) => iso(p.intakeAtMs))).toEqual(hand);
    expect(hand.slice(11, 14)).toEqual(['2027-03-27T19:00:00Z', '2027-03-28T01:30:00Z', '2027-03-28T06:00:00Z']);
  });

  it('October: 02:30 on Sunday 31 October exists twice and means the first, 02:30 CEST = 00:30 UTC, with one dst_ambiguous warning', () => {
    const r = validateManifest(example('roll-dst-october-2027'), { slotCount: 56, nowMs: Date.parse('2027-10-01T00:00:00Z') });
    expect(r.ok).toBe(true);
    expect(r.problems.map((p) => `${p.path} ${p.severity} ${p.code}`)).toEqual(['/pouches/12/intakeTime warning dst_ambiguous']);
    // CEST (+2) up to the change at 03:00 CEST on the 31st (the first 02:30 is still summer time); CET (+1) after.
    const dates = ['2027-10-28', '2027-10-29', '2027-10-30', '2027-10-31', '2027-11-01', '2027-11-02', '2027-11-03'];
    const hand = expectedUtc(dates, (date, time) => (date < '2027-10-31' || (date === '2027-10-31' && time < '03:00') ? 2 : 1));
    expect(r.pouches.map((p) => iso(p.intakeAtMs))).toEqual(hand);
    expect(hand.slice(11, 14)).toEqual(['2027-10-30T18:00:00Z', '2027-10-31T00:30:00Z', '2027-10-31T07:00:00Z']);
  });
});

describe('resolveLocalTime at the edges of a change', () => {
  const cases: [string, string, string, string, 'exact' | 'gap' | 'ambiguous'][] = [
    ['Europe/Copenhagen', '2027-03-28', '01:59', '2027-03-28T00:59:00Z', 'exact'],
    ['Europe/Copenhagen', '2027-03-28', '02:00', '2027-03-28T01:00:00Z', 'gap'],
    ['Europe/Copenhagen', '2027-03-28', '02:59', '2027-03-28T01:59:00Z', 'gap'],
    ['Europe/Copenhagen', '2027-03-28', '03:00', '2027-03-28T01:00:00Z', 'exact'],
    ['Europe/Copenhagen', '2027-10-31', '01:59', '2027-10-30T23:59:00Z', 'exact'],
    ['Europe/Copenhagen', '2027-10-31', '02:00', '2027-10-31T00:00:00Z', 'ambiguous'],
    ['Europe/Copenhagen', '2027-10-31', '02:59', '2027-10-31T00:59:00Z', 'ambiguous'],
    ['Europe/Copenhagen', '2027-10-31', '03:00', '2027-10-31T02:00:00Z', 'exact'],
    ['Europe/Copenhagen', '2027-07-01', '12:00', '2027-07-01T10:00:00Z', 'exact'],
    // EST −5 → EDT −4 on 14 March, back on 7 November.
    ['America/New_York', '2027-03-14', '02:30', '2027-03-14T07:30:00Z', 'gap'],
    ['America/New_York', '2027-11-07', '01:30', '2027-11-07T05:30:00Z', 'ambiguous'],
    // Southern hemisphere: AEST +10 → AEDT +11 on 3 October, back on 4 April.
    ['Australia/Sydney', '2027-10-03', '02:30', '2027-10-02T16:30:00Z', 'gap'],
    ['Australia/Sydney', '2027-04-04', '02:30', '2027-04-03T15:30:00Z', 'ambiguous'],
    ['Asia/Kolkata', '2027-03-28', '02:30', '2027-03-27T21:00:00Z', 'exact'],
  ];
  for (const [zone, date, time, utc, kind] of cases) {
    it(`${zone} ${date} ${time} → ${utc} (${kind})`, () => {
      const r = resolveLocalTime(date, time, zone);
      expect(iso(r.atMs)).toBe(utc);
      expect(r.kind).toBe(kind);
      if (kind === 'gap') expect(r.shiftMin).toBe(60);
      if (kind === 'ambiguous') expect((r.laterAtMs as number) - r.atMs).toBe(3_600_000);
    });
  }

  it('formats instants back to local readings with their offset', () => {
    expect(formatLocal(Date.parse('2027-03-28T01:30:00Z'), 'Europe/Copenhagen')).toBe('2027-03-28 03:30 (+02:00)');
    expect(formatLocal(Date.parse('2027-10-31T01:30:00Z'), 'Europe/Copenhagen')).toBe('2027-10-31 02:30 (+01:00)');
    expect(formatLocal(Date.parse('2027-03-27T21:00:00Z'), 'Asia/Kolkata')).toBe('2027-03-28 02:30 (+05:30)');
    expect(formatLocal(Date.parse('2027-03-14T12:00:00Z'), 'America/New_York')).toBe('2027-03-14 08:00 (-04:00)');
  });

  it('knows real dates and zones', () => {
    expect(['2028-02-29', '2027-12-31', '1900-01-01'].every(isRealDate)).toBe(true);
    expect(['2027-02-29', '2027-04-31', '2027-13-01', '2027-00-10', '1899-12-31', '2200-01-01', '2027-1-01', 20270101].some(isRealDate)).toBe(false);
    expect(isValidTimeZone('Europe/Copenhagen')).toBe(true);
    expect(['Europe/Kopenhagen', '', 'x'.repeat(65), 'CET+1'].some(isValidTimeZone)).toBe(false);
  });
});
