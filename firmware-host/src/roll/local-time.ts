// Local wall-clock dates and times in an IANA time zone → UTC instants, with one fixed meaning on daylight-saving days.
//
// Conversion uses Intl.DateTimeFormat({ timeZone }) only: no time-zone package, no wall clock.
//
// The DST rule (also in src/roll/README.md):
// - A local time that does not exist (spring forward, e.g. 02:30 on the last Sunday of March in
//   Europe/Copenhagen) is read with the UTC offset in force BEFORE the gap, so it lands after the gap,
//   moved forward by the gap's length: 02:30 → 03:30 CEST = 01:30 UTC. Kind `gap`.
// - A local time that exists twice (fall back, e.g. 02:30 on the last Sunday of October) means the FIRST
//   occurrence, the earlier instant (still summer time): 02:30 CEST = 00:30 UTC. Kind `ambiguous`.
// Why these: a dose is never moved earlier than the wall clock the citizen reads, and it is never given twice.

export type LocalResolution = {
  /** The chosen UTC instant. */
  atMs: number;
  /** `exact`: the time exists once; `gap`: it does not exist; `ambiguous`: it exists twice. */
  kind: 'exact' | 'gap' | 'ambiguous';
  /** For `gap`: how far the wall-clock time was moved forward, in minutes. */
  shiftMin?: number;
  /** For `ambiguous`: the second occurrence, not chosen. */
  laterAtMs?: number;
};

const DAY_MS = 86_400_000;
const MAX_CACHED_ZONES = 64;
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    // Throws RangeError for a zone Intl does not know; callers check with isValidTimeZone first.
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    // Zone names are case-insensitive, so hostile input could mint endless cache keys: keep the cache small.
    if (formatters.size >= MAX_CACHED_ZONES) formatters.clear();
    formatters.set(timeZone, f);
  }
  return f;
}

export function isValidTimeZone(timeZone: string): boolean {
  if (typeof timeZone !== 'string' || timeZone.length === 0 || timeZone.length > 64) return false;
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** The zone's UTC offset at an instant, in ms (Europe/Copenhagen in summer: +7_200_000). */
export function offsetMsAt(timeZone: string, atMs: number): number {
  const whole = Math.floor(atMs / 1000) * 1000;
  const p: Record<string, number> = {};
  for (const part of formatter(timeZone).formatToParts(whole)) {
    if (part.type !== 'literal') p[part.type] = Number(part.value);
  }
  const wall = Date.UTC(p.year ?? 1970, (p.month ?? 1) - 1, p.day ?? 1, p.hour ?? 0, p.minute ?? 0, p.second ?? 0);
  return wall - whole;
}

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIME_RE = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** A real calendar date `YYYY-MM-DD` between 1900 and 2199 (so Intl and Date.UTC behave plainly). */
export function isRealDate(date: unknown): date is string {
  if (typeof date !== 'string') return false;
  const m = DATE_RE.exec(date);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (y < 1900 || y > 2199 || mo < 1 || mo > 12 || d < 1) return false;
  return d <= new Date(Date.UTC(y, mo, 0)).getUTCDate();
}

export function isLocalTime(time: unknown): time is string {
  return typeof time === 'string' && TIME_RE.test(time);
}

/** Resolves a local date and time in a zone to one UTC instant, by the DST rule above. */
export function resolveLocalTime(date: string, time: string, timeZone: string): LocalResolution {
  const [y, mo, d] = date.split('-').map(Number) as [number, number, number];
  const [hh, mm] = time.split(':').map(Number) as [number, number];
  // The wall-clock reading as if it were UTC; the instant is wall − offset for the offset in force then.
  const wall = Date.UTC(y, mo - 1, d, hh, mm);
  const before = offsetMsAt(timeZone, wall - DAY_MS);
  const after = offsetMsAt(timeZone, wall + DAY_MS);
  const offsets = [...new Set([before, offsetMsAt(timeZone, wall), after])];
  const instants = [...new Set(offsets.map((o) => wall - o).filter((at) => offsetMsAt(timeZone, at) === wall - at))].sort((a, b) => a - b);
  const first = instants[0];
  if (first !== undefined) {
    const later = instants[instants.length - 1];
    return instants.length > 1 && later !== undefined ? { atMs: first, kind: 'ambiguous', laterAtMs: later } : { atMs: first, kind: 'exact' };
  }
  const atMs = wall - before;
  return { atMs, kind: 'gap', shiftMin: Math.round((offsetMsAt(timeZone, atMs) - before) / 60_000) };
}

/** `2027-03-28 03:30 (+02:00)`: the local reading of an instant, for messages. */
export function formatLocal(atMs: number, timeZone: string): string {
  const offset = offsetMsAt(timeZone, atMs);
  const local = new Date(Math.floor(atMs / 1000) * 1000 + offset).toISOString();
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset) / 60_000;
  const hhmm = `${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  return `${local.slice(0, 10)} ${local.slice(11, 16)} (${sign}${hhmm})`;
}
