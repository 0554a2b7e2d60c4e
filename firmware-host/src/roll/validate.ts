// Checks a roll manifest before it may be loaded: reports every problem with where it is, and never throws.
//
// The order of work matters for hostile input: the size cap comes before decoding, decoding before parsing,
// and the checks after the schema read the parsed value defensively, so that one bad pouch does not hide
// the problems of the others. No wall clock: "now" comes in through the context.
//
// DST rule (see local-time.ts and README.md): a local time that does not exist is moved forward by the
// gap (02:30 → 03:30 summer time, warning dst_gap); one that exists twice means its first occurrence
// (warning dst_ambiguous).

import { ValueErrorType } from '@sinclair/typebox/errors';
import { findDuplicateKeys, locateJsonError } from './json-locate.js';
import { formatLocal, isLocalTime, isRealDate, isValidTimeZone, resolveLocalTime } from './local-time.js';
import { checkManifest, DEFAULT_TIME_ZONE, MAX_POSITION, type RollManifest, type TimingOverrides } from './manifest-schema.js';
import { PROBLEM_CODES, type ManifestProblem, type ProblemCode } from './problems.js';
import { DEFAULT_TIMING, pouchLabel, type DoseTiming, type PouchInstructions, type ScheduledPouch } from './types.js';

export const MAX_MANIFEST_BYTES = 2 * 1024 * 1024;
export const DEFAULT_MAX_PILLS_PER_POUCH = 20;
export const MAX_PROBLEMS = 1000;
/** A new roll may start at most this long after the loaded one ends, or its own longest interval if longer. */
export const MIN_ROLL_GAP_ALLOWED_MS = 24 * 3_600_000;

export type LoadedRoll = {
  rollId: string;
  lastIntakeAtMs: number;
  firstIntakeAtMs: number;
  /**
   * Its pouches not yet dispensed, by intake time. When given, the new roll must start at or before the first of
   * them (no dose dropped), and all of them come back on loading, which the staff must choose (`returnPending`).
   */
  pending?: readonly { label: string; intakeAtMs: number }[];
};

export type ValidateContext = {
  /** The citizen this robot serves; unchecked when absent. */
  citizenId?: string;
  /** Slots on the carousel (the hardware profile's slotCount). */
  slotCount: number;
  /** UTC ms; intake times before it are past. */
  nowMs: number;
  /** The roll now loaded, to check for gaps and overlaps. */
  loaded?: LoadedRoll | undefined;
  /** The staff chose to take back the loaded roll's pouches not yet dispensed: an overlap is then a warning, not an error. */
  returnPending?: boolean;
  maxPillsPerPouch?: number;
};

export type ValidationResult = {
  /** True when no problem is an error (warnings allowed). */
  ok: boolean;
  problems: ManifestProblem[];
  /** The schedule, in position order; empty unless ok. */
  pouches: ScheduledPouch[];
  /** The parsed manifest with its time zone filled in; only when ok. It holds the printed name: never log it. */
  manifest?: RollManifest;
};

/** Work stops collecting here; the answer lists at most MAX_PROBLEMS, the first ones in document order. */
const COLLECT_LIMIT = 100 * MAX_PROBLEMS;

class Problems {
  readonly list: ManifestProblem[] = [];
  /** Problems seen past COLLECT_LIMIT; the schema walk stops at the first, so this is a lower bound. */
  dropped = 0;

  add(path: string, code: ProblemCode, message: string, extra?: { line: number; column: number }): void {
    // Roll-level findings past the schema are few and matter most: they are always kept.
    const rollLevel = code !== 'schema' && !path.startsWith('/pouches/');
    if (this.list.length >= COLLECT_LIMIT && !rollLevel) {
      this.dropped++;
      return;
    }
    this.list.push({ path, code, severity: PROBLEM_CODES[code].severity, message, ...extra });
  }

  get hasErrors(): boolean {
    return this.dropped > 0 || this.list.some((p) => p.severity === 'error');
  }

  /** Sorts, and keeps the first MAX_PROBLEMS, so a flood of pouch errors cannot hide a roll-level one. */
  finish(): void {
    sortProblems(this.list);
    if (this.list.length <= MAX_PROBLEMS && this.dropped === 0) return;
    const more = this.list.length - MAX_PROBLEMS + this.dropped;
    this.list.length = Math.min(this.list.length, MAX_PROBLEMS);
    const count = this.dropped > 0 ? `more than ${more}` : String(more);
    this.list.push({ path: '/', code: 'too_many_problems', severity: 'error', message: `${count} more problems were not listed` });
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const iso = (ms: number): string => new Date(ms).toISOString().replace('.000Z', 'Z');
const hours = (ms: number): string => `${Math.round((ms / 3_600_000) * 10) / 10} h`;

export function validateManifest(input: string | Buffer, ctx: ValidateContext): ValidationResult {
  try {
    return validate(input, ctx);
  } catch (err) {
    // A safety net only: the fuzz test checks that this code never shows up.
    const message = `the validator failed (${err instanceof Error ? err.message.slice(0, 200) : 'unknown'}); the manifest is treated as invalid`;
    return { ok: false, problems: [{ path: '/', code: 'internal', severity: 'error', message }], pouches: [] };
  }
}

function validate(input: string | Buffer, ctx: ValidateContext): ValidationResult {
  const problems = new Problems();
  const invalid = (): ValidationResult => ({ ok: false, problems: problems.list, pouches: [] });

  let text: string;
  if (typeof input === 'string') {
    // Every UTF-16 unit is at least one UTF-8 byte, so a long string is too large without counting.
    const bytes = input.length > MAX_MANIFEST_BYTES ? input.length : Buffer.byteLength(input, 'utf8');
    if (bytes > MAX_MANIFEST_BYTES) {
      problems.add('/', 'too_large', `the file is more than ${MAX_MANIFEST_BYTES} bytes (2 MiB); a roll manifest is far smaller`);
      return invalid();
    }
    text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  } else if (input instanceof Uint8Array) {
    if (input.byteLength > MAX_MANIFEST_BYTES) {
      problems.add('/', 'too_large', `the file is more than ${MAX_MANIFEST_BYTES} bytes (2 MiB); a roll manifest is far smaller`);
      return invalid();
    }
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(input);
    } catch {
      problems.add('/', 'not_utf8', 'the file is not UTF-8 text');
      return invalid();
    }
  } else {
    problems.add('/', 'not_json', 'the input is neither text nor bytes');
    return invalid();
  }

  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    const at = locateJsonError(text);
    if (at) {
      problems.add(`${at.line}:${at.column}`, 'not_json', `not JSON: ${at.reason} at line ${at.line}, column ${at.column}`, { line: at.line, column: at.column });
    } else {
      // JSON.parse's own message quotes the text, which may hold the printed name: not repeated.
      problems.add('/', 'not_json', 'not JSON');
    }
    return invalid();
  }

  const repeats = findDuplicateKeys(text, MAX_PROBLEMS + 1);
  for (const d of repeats.slice(0, MAX_PROBLEMS)) {
    problems.add(d.path, 'duplicate_key', `property repeated at line ${d.line}, column ${d.column} (first at line ${d.firstLine}); a manifest must name each property once`, {
      line: d.line,
      column: d.column,
    });
  }
  // The scan stops past the cap: that there are more is known, not how many.
  if (repeats.length > MAX_PROBLEMS) problems.dropped++;
  schemaProblems(data, problems);
  const pouches = semanticChecks(data, ctx, problems);

  problems.finish();
  if (problems.hasErrors || !pouches) return invalid();
  const manifest = data as RollManifest;
  return { ok: true, problems: problems.list, pouches, manifest: { ...manifest, timeZone: manifest.timeZone ?? DEFAULT_TIME_ZONE } };
}

const BOUNDS = new Set<ValueErrorType>([ValueErrorType.IntegerMaximum, ValueErrorType.IntegerMinimum, ValueErrorType.NumberMaximum, ValueErrorType.NumberMinimum]);

function schemaProblems(data: unknown, problems: Problems): void {
  if (checkManifest.Check(data)) return;
  const missing = new Set<string>();
  const seen = new Set<string>();
  for (const e of checkManifest.Errors(data)) {
    if (problems.list.length >= COLLECT_LIMIT) {
      problems.dropped++;
      break;
    }
    const path = e.path || '/';
    // A missing property also fails its type check; say it once.
    if (missing.has(path)) continue;
    if (e.type === ValueErrorType.ObjectRequiredProperty) missing.add(path);
    const description = (e.schema as { description?: unknown }).description;
    let message: string;
    if (e.type === ValueErrorType.ObjectRequiredProperty) message = 'missing';
    else if (e.type === ValueErrorType.ObjectAdditionalProperties) message = 'unexpected property';
    else if (e.type === ValueErrorType.StringPattern && typeof description === 'string') message = `expected ${description}`;
    else message = e.message.charAt(0).toLowerCase() + e.message.slice(1);
    // A bound says what the number means, so the reason for the bound is in the message.
    if (BOUNDS.has(e.type) && typeof description === 'string') message = `${message} (${description})`;
    if (seen.has(`${path}\n${message}`)) continue;
    seen.add(`${path}\n${message}`);
    problems.add(path, 'schema', message);
  }
}

type Entry = {
  index: number; position?: number; atMs?: number; when?: string; pillCount?: number; timing?: TimingOverrides;
  useByMs?: number; instructions?: PouchInstructions;
};

/** Plain overrides from a value that may not be valid: only whole-number fields are kept. */
function timingOf(v: unknown): TimingOverrides | undefined {
  if (!isObject(v)) return undefined;
  const t: TimingOverrides = {};
  for (const k of ['earlyMin', 'reminderEveryMin', 'overdueAfterMin', 'closeAfterMin'] as const) {
    if (isInt(v[k])) t[k] = v[k];
  }
  return Object.keys(t).length ? t : undefined;
}

function timingContradiction(t: DoseTiming): string | undefined {
  return t.overdueAfterMin >= t.closeAfterMin
    ? `overdue after ${t.overdueAfterMin} min must come before close after ${t.closeAfterMin} min`
    : undefined;
}

/** Runs every check past the schema on whatever parts are readable; returns the schedule if it could be built. */
function semanticChecks(data: unknown, ctx: ValidateContext, problems: Problems): ScheduledPouch[] | undefined {
  if (!isObject(data)) return undefined;
  const rollId = typeof data.rollId === 'string' ? data.rollId : undefined;

  if (ctx.citizenId !== undefined && typeof data.citizenId === 'string' && data.citizenId !== ctx.citizenId) {
    problems.add('/citizenId', 'wrong_citizen', `the manifest is for citizen ${JSON.stringify(data.citizenId.slice(0, 64))}, this robot serves citizen ${JSON.stringify(ctx.citizenId)}`);
  }
  if (ctx.loaded && rollId !== undefined && rollId === ctx.loaded.rollId) {
    problems.add('/rollId', 'roll_already_loaded', `roll ${rollId} is the roll now loaded`);
  }

  const label = isObject(data.printedLabel) ? data.printedLabel : undefined;
  // The birth date is health-adjacent personal data: the message never repeats it.
  if (label && typeof label.birthDate === 'string' && /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/.test(label.birthDate) && !isRealDate(label.birthDate)) {
    problems.add('/printedLabel/birthDate', 'bad_date', 'the birth date is not a real calendar date');
  }

  let timeZone: string | undefined = DEFAULT_TIME_ZONE;
  if (data.timeZone !== undefined) {
    timeZone = typeof data.timeZone === 'string' && isValidTimeZone(data.timeZone) ? data.timeZone : undefined;
    if (typeof data.timeZone === 'string' && data.timeZone.length > 0 && data.timeZone.length <= 64 && !timeZone) {
      problems.add('/timeZone', 'bad_time_zone', `${JSON.stringify(data.timeZone)} is not a time zone this robot knows (IANA name, e.g. Europe/Copenhagen)`);
    }
  }

  const period = isObject(data.period) ? data.period : undefined;
  const dateAt = (v: unknown, path: string): string | undefined => {
    if (isRealDate(v)) return v;
    if (typeof v === 'string' && /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/.test(v)) problems.add(path, 'bad_date', `${v} is not a real calendar date between 1900 and 2199`);
    return undefined;
  };
  const from = period ? dateAt(period.from, '/period/from') : undefined;
  const to = period ? dateAt(period.to, '/period/to') : undefined;
  const periodOk = from !== undefined && to !== undefined && from <= to;
  if (from !== undefined && to !== undefined && from > to) problems.add('/period', 'bad_period', `the period ends (${to}) before it starts (${from})`);

  const rollTiming = timingOf(data.timing);
  const rollEffective = { ...DEFAULT_TIMING, ...rollTiming };
  const rollContradiction = timingContradiction(rollEffective);
  if (rollContradiction) problems.add('/timing', 'bad_timing', rollContradiction);

  const list = Array.isArray(data.pouches) ? (data.pouches as unknown[]) : [];
  if (Number.isFinite(ctx.slotCount) && list.length > ctx.slotCount) {
    problems.add('/pouches', 'too_many_pouches', `${list.length} pouches, the carousel holds ${ctx.slotCount}`);
  }

  const maxPills = ctx.maxPillsPerPouch ?? DEFAULT_MAX_PILLS_PER_POUCH;
  const entries: Entry[] = [];
  for (let index = 0; index < list.length; index++) {
    const p = list[index];
    const entry: Entry = { index };
    entries.push(entry);
    if (!isObject(p)) continue;
    const at = `/pouches/${index}`;
    if (isInt(p.position) && p.position >= 1 && p.position <= MAX_POSITION) entry.position = p.position;
    const who = entry.position !== undefined ? `position ${entry.position}` : `pouch ${index + 1} in the list`;

    const date = dateAt(p.intakeDate, `${at}/intakeDate`);
    if (date !== undefined && periodOk && (date < (from as string) || date > (to as string))) {
      problems.add(`${at}/intakeDate`, 'outside_period', `${who}: intake date ${date} is outside the roll's period ${from} to ${to}`);
    }
    if (date !== undefined && isLocalTime(p.intakeTime) && timeZone !== undefined) {
      const local = `${date} ${p.intakeTime}`;
      const r = resolveLocalTime(date, p.intakeTime, timeZone);
      entry.atMs = r.atMs;
      entry.when = `${local} (${iso(r.atMs)})`;
      if (r.kind === 'gap') {
        problems.add(
          `${at}/intakeTime`,
          'dst_gap',
          `${who}: ${local} does not exist in ${timeZone} (clocks go forward ${r.shiftMin} min); taken as ${formatLocal(r.atMs, timeZone)} = ${iso(r.atMs)}`,
        );
      } else if (r.kind === 'ambiguous') {
        problems.add(
          `${at}/intakeTime`,
          'dst_ambiguous',
          `${who}: ${local} exists twice in ${timeZone} (clocks go back); taken as the first, ${formatLocal(r.atMs, timeZone)} = ${iso(r.atMs)}`,
        );
      }
      if (r.atMs < ctx.nowMs) {
        problems.add(`${at}/intakeTime`, 'past_intake', `${who}: intake ${entry.when} is already past (now ${iso(ctx.nowMs)})`);
      }
    }

    if (isInt(p.pillCount) && p.pillCount >= 0) {
      entry.pillCount = p.pillCount;
      if (p.pillCount === 0) problems.add(`${at}/pillCount`, 'zero_pills', `${who} holds 0 pills`);
      else if (p.pillCount > maxPills) problems.add(`${at}/pillCount`, 'too_many_pills', `${who} holds ${p.pillCount} pills, more than the plausible ${maxPills}`);
      const drugs = Array.isArray(p.drugs) ? (p.drugs as unknown[]) : undefined;
      const counts = drugs?.map((d) => (isObject(d) && isInt(d.count) ? d.count : undefined));
      if (counts && counts.every((c) => c !== undefined)) {
        const sum = (counts as number[]).reduce((a, b) => a + b, 0);
        if (sum !== p.pillCount) {
          problems.add(`${at}/pillCount`, 'pill_count_mismatch', `${who}: pillCount is ${p.pillCount}, the drug counts add up to ${sum}`);
        }
      }
    }

    const useBy = dateAt(p.useBy, `${at}/useBy`);
    if (useBy !== undefined && timeZone !== undefined) {
      // Usable through the whole use-by date: until the next local midnight.
      const next = new Date(Date.parse(`${useBy}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
      entry.useByMs = resolveLocalTime(next, '00:00', timeZone).atMs;
      if (entry.atMs !== undefined && entry.useByMs <= entry.atMs) {
        problems.add(`${at}/useBy`, 'expires_before_intake', `${who}: the pouch may be used until ${useBy}, before its intake ${entry.when}`);
      }
    }
    if (isObject(p.instructions)) {
      const da = typeof p.instructions.da === 'string' ? p.instructions.da : undefined;
      const en = typeof p.instructions.en === 'string' ? p.instructions.en : undefined;
      if (da !== undefined || en !== undefined) entry.instructions = { ...(da !== undefined ? { da } : {}), ...(en !== undefined ? { en } : {}) };
    }

    if (p.timing !== undefined) {
      entry.timing = timingOf(p.timing);
      const contradiction = entry.timing ? timingContradiction({ ...rollEffective, ...entry.timing }) : undefined;
      if (contradiction) problems.add(`${at}/timing`, 'bad_timing', `${who}: ${contradiction}`);
    }
  }

  positionChecks(entries, problems);
  timeChecks(entries, ctx, problems, rollEffective);

  if (problems.hasErrors || rollId === undefined) return undefined;
  return entries
    .map((e): ScheduledPouch => {
      const timing = { ...rollTiming, ...e.timing };
      const position = e.position as number;
      return {
        rollId,
        position,
        slot: position - 1,
        label: pouchLabel(rollId, position),
        intakeAtMs: e.atMs as number,
        pillCount: e.pillCount as number,
        timing: Object.keys(timing).length ? timing : undefined,
        ...(e.useByMs !== undefined ? { useByMs: e.useByMs } : {}),
        ...(e.instructions !== undefined ? { instructions: e.instructions } : {}),
      };
    })
    .sort((a, b) => a.position - b.position);
}

function positionChecks(entries: Entry[], problems: Problems): void {
  const firstAt = new Map<number, number>();
  let highest = 0;
  for (const e of entries) {
    if (e.position === undefined) continue;
    const path = `/pouches/${e.index}/position`;
    const earlier = firstAt.get(e.position);
    if (earlier !== undefined) {
      problems.add(path, 'duplicate_position', `position ${e.position} is also at /pouches/${earlier}`);
      continue;
    }
    firstAt.set(e.position, e.index);
    if (e.position < highest) problems.add(path, 'position_order', `position ${e.position} is listed after position ${highest}`);
    highest = Math.max(highest, e.position);
  }
  // Gaps only make sense when every pouch has a readable position.
  if (entries.length === 0 || entries.some((e) => e.position === undefined)) return;
  let runStart: number | undefined;
  for (let k = 1; k <= highest + 1; k++) {
    const missing = k <= highest && !firstAt.has(k);
    if (missing && runStart === undefined) runStart = k;
    if (!missing && runStart !== undefined) {
      const run = runStart === k - 1 ? `position ${runStart} is` : `positions ${runStart} to ${k - 1} are`;
      problems.add('/pouches', 'position_gap', `${run} missing: positions must run 1 to ${highest} without a gap`);
      runStart = undefined;
    }
  }
}

function timeChecks(entries: Entry[], ctx: ValidateContext, problems: Problems, rollTiming: DoseTiming): void {
  const byPosition = new Map<number, Entry>();
  for (const e of entries) if (e.position !== undefined && !byPosition.has(e.position)) byPosition.set(e.position, e);
  const timed = [...byPosition.values()].filter((e) => e.atMs !== undefined).sort((a, b) => (a.position as number) - (b.position as number));

  const firstAtTime = new Map<number, Entry>();
  let previous: Entry | undefined;
  for (const e of timed) {
    const at = e.atMs as number;
    const path = `/pouches/${e.index}/intakeTime`;
    const same = firstAtTime.get(at);
    if (same) {
      problems.add(path, 'duplicate_time', `position ${e.position} is due at ${e.when}, the same time as position ${same.position} (/pouches/${same.index})`);
    } else {
      firstAtTime.set(at, e);
      if (previous && at < (previous.atMs as number)) {
        problems.add(path, 'out_of_order', `position ${e.position} is due at ${e.when}, before position ${previous.position} at ${previous.when}`);
      } else if (previous) {
        // A dose's window closes when the next one's early window opens: that must come after the dose is due.
        const early = { ...rollTiming, ...e.timing }.earlyMin;
        const opens = at - early * 60_000;
        if (opens <= (previous.atMs as number)) {
          problems.add(
            e.timing?.earlyMin !== undefined ? `/pouches/${e.index}/timing/earlyMin` : '/timing/earlyMin',
            'bad_window',
            `position ${e.position} may be taken ${early} min early, from ${iso(opens)}, not after position ${previous.position} is due at ${previous.when}: position ${previous.position}'s window would close before it is due`,
          );
        }
      }
    }
    previous = e;
  }

  const loaded = ctx.loaded;
  if (!loaded || timed.length === 0) return;
  const byTime = [...timed].sort((a, b) => (a.atMs as number) - (b.atMs as number));
  const first = byTime[0] as Entry;
  const firstMs = first.atMs as number;
  const path = `/pouches/${first.index}/intakeTime`;
  const pending = loaded.pending;
  if (pending && pending.length > 0) {
    const next = pending[0] as { label: string; intakeAtMs: number };
    const last = pending[pending.length - 1] as { label: string; intakeAtMs: number };
    const skipped = pending.filter((d) => d.intakeAtMs < firstMs).length;
    if (skipped > 0) {
      problems.add(
        path,
        'roll_skips_doses',
        `the roll starts ${first.when}, after ${next.label} due ${iso(next.intakeAtMs)}, the first dose not yet dispensed: ${skipped} pouch${skipped === 1 ? '' : 'es'} of roll ${loaded.rollId} due before it would be dropped`,
      );
      return;
    }
    const span = pending.length === 1 ? next.label : `${next.label} to ${last.label}`;
    if (ctx.returnPending) {
      problems.add(path, 'roll_overlap_returned', `${pending.length} pouch${pending.length === 1 ? '' : 'es'} of roll ${loaded.rollId} not yet dispensed (${span}) ${pending.length === 1 ? 'comes' : 'come'} back; the receipt lists them`);
    } else {
      problems.add(path, 'roll_overlap', `roll ${loaded.rollId} still has ${pending.length} pouch${pending.length === 1 ? '' : 'es'} not yet dispensed (${span}); loading this roll sends them back: choose to return them, or load it later`);
    }
    return;
  }
  if (firstMs <= loaded.lastIntakeAtMs) {
    const overlapping = byTime.filter((e) => (e.atMs as number) <= loaded.lastIntakeAtMs).length;
    problems.add(path, 'roll_overlap', `the roll starts ${first.when}, before roll ${loaded.rollId} now loaded ends (${iso(loaded.lastIntakeAtMs)}); ${overlapping} pouches overlap`);
    return;
  }
  let longest = 0;
  for (let i = 1; i < byTime.length; i++) longest = Math.max(longest, (byTime[i]?.atMs as number) - (byTime[i - 1]?.atMs as number));
  const allowed = Math.max(MIN_ROLL_GAP_ALLOWED_MS, longest);
  const gap = firstMs - loaded.lastIntakeAtMs;
  if (gap > allowed) {
    problems.add(path, 'roll_gap', `the roll starts ${first.when}, ${hours(gap)} after roll ${loaded.rollId} now loaded ends (${iso(loaded.lastIntakeAtMs)}); at most ${hours(allowed)} is allowed`);
  }
}

/** The whole file first, then by path, array indices compared as numbers (so pouch 10 follows pouch 9). */
function sortProblems(list: ManifestProblem[]): void {
  const key = (p: ManifestProblem) => (p.path === '/' ? [] : p.path.split('/').slice(1));
  list.sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    for (let i = 0; i < Math.min(ka.length, kb.length); i++) {
      const x = ka[i] as string;
      const y = kb[i] as string;
      if (x === y) continue;
      const nx = Number(x);
      const ny = Number(y);
      if (/^\d+$/.test(x) && /^\d+$/.test(y)) return nx - ny;
      return x < y ? -1 : 1;
    }
    return ka.length - kb.length;
  });
}
