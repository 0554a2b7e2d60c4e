// Roll manifest validation: one fixture per problem, each with its code, path and message; the schedule a valid roll gives.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PROBLEM_CODES, type ProblemCode } from '../../../firmware-host/src/roll/problems.js';
import { MANIFEST_JSON_SCHEMA, checkManifest } from '../../../firmware-host/src/roll/manifest-schema.js';
import { MAX_MANIFEST_BYTES, MAX_PROBLEMS, validateManifest, type ValidateContext } from '../../../firmware-host/src/roll/validate.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url));
const utc = (iso: string) => Date.parse(iso);

const CTX: ValidateContext = { citizenId: 'C7F3A9B2', slotCount: 56, nowMs: utc('2027-05-01T00:00:00Z') };
/** The roll now loaded in the gap and overlap cases: its last pouch is 2027-05-02 22:00 Copenhagen time. */
const LOADED = { rollId: 'R27W17A', firstIntakeAtMs: utc('2027-04-26T06:00:00Z'), lastIntakeAtMs: utc('2027-05-02T20:00:00Z') };

/** The loaded roll's pouches not yet dispensed, in the continuity cases: the last two of its Sunday. */
const PENDING = [
  { label: 'R27W17A-027', intakeAtMs: utc('2027-05-02T16:00:00Z') },
  { label: 'R27W17A-028', intakeAtMs: utc('2027-05-02T20:00:00Z') },
];

type Case = { code: ProblemCode; ctx?: Partial<ValidateContext>; path: string; message: string };

const CASES: Case[] = [
  { code: 'not_json', path: '18:5', message: 'not JSON: unexpected character "{", expected "," or "]" at line 18, column 5' },
  { code: 'not_utf8', path: '/', message: 'the file is not UTF-8 text' },
  { code: 'schema', path: '/pouches/2/pillCount', message: 'missing' },
  { code: 'bad_date', path: '/pouches/4/intakeDate', message: '2027-04-31 is not a real calendar date between 1900 and 2199' },
  { code: 'bad_time_zone', path: '/timeZone', message: '"Europe/Kopenhagen" is not a time zone this robot knows (IANA name, e.g. Europe/Copenhagen)' },
  { code: 'bad_period', path: '/period', message: 'the period ends (2027-05-03) before it starts (2027-05-04)' },
  { code: 'bad_timing', path: '/timing', message: 'overdue after 120 min must come before close after 60 min' },
  { code: 'wrong_citizen', path: '/citizenId', message: 'the manifest is for citizen "C0000001", this robot serves citizen "C7F3A9B2"' },
  { code: 'roll_already_loaded', ctx: { loaded: LOADED }, path: '/rollId', message: 'roll R27W17A is the roll now loaded' },
  { code: 'too_many_pouches', path: '/pouches', message: '60 pouches, the carousel holds 56' },
  { code: 'duplicate_position', path: '/pouches/4/position', message: 'position 4 is also at /pouches/3' },
  { code: 'position_order', path: '/pouches/3/position', message: 'position 3 is listed after position 4' },
  { code: 'position_gap', path: '/pouches', message: 'position 4 is missing: positions must run 1 to 9 without a gap' },
  {
    code: 'out_of_order',
    path: '/pouches/3/intakeTime',
    message: 'position 4 is due at 2027-05-03 18:00 (2027-05-03T16:00:00Z), before position 3 at 2027-05-03 22:00 (2027-05-03T20:00:00Z)',
  },
  {
    code: 'duplicate_time',
    path: '/pouches/2/intakeTime',
    message: 'position 3 is due at 2027-05-03 12:00 (2027-05-03T10:00:00Z), the same time as position 2 (/pouches/1)',
  },
  { code: 'outside_period', path: '/pouches/7/intakeDate', message: "position 8: intake date 2027-05-05 is outside the roll's period 2027-05-03 to 2027-05-04" },
  {
    code: 'past_intake',
    path: '/pouches/0/intakeTime',
    message: 'position 1: intake 2027-04-30 22:00 (2027-04-30T20:00:00Z) is already past (now 2027-05-01T00:00:00Z)',
  },
  {
    code: 'roll_gap',
    ctx: { loaded: LOADED },
    path: '/pouches/0/intakeTime',
    message: 'the roll starts 2027-05-05 08:00 (2027-05-05T06:00:00Z), 58 h after roll R27W17A now loaded ends (2027-05-02T20:00:00Z); at most 24 h is allowed',
  },
  {
    code: 'roll_overlap',
    ctx: { loaded: LOADED },
    path: '/pouches/0/intakeTime',
    message: 'the roll starts 2027-05-02 08:00 (2027-05-02T06:00:00Z), before roll R27W17A now loaded ends (2027-05-02T20:00:00Z); 4 pouches overlap',
  },
  {
    code: 'roll_skips_doses',
    ctx: { loaded: { ...LOADED, pending: PENDING } },
    path: '/pouches/0/intakeTime',
    message:
      'the roll starts 2027-05-03 08:00 (2027-05-03T06:00:00Z), after R27W17A-027 due 2027-05-02T16:00:00Z, the first dose not yet dispensed: 2 pouches of roll R27W17A due before it would be dropped',
  },
  {
    code: 'roll_overlap_returned',
    ctx: { loaded: { ...LOADED, pending: [{ label: 'R27W17A-028', intakeAtMs: utc('2027-05-03T10:00:00Z') }] }, returnPending: true },
    path: '/pouches/0/intakeTime',
    message: '1 pouch of roll R27W17A not yet dispensed (R27W17A-028) comes back; the receipt lists them',
  },
  {
    code: 'duplicate_key',
    path: '/pouches/2/intakeTime',
    message: 'property repeated at line 17, column 66 (first at line 17); a manifest must name each property once',
  },
  {
    code: 'expires_before_intake',
    path: '/pouches/4/useBy',
    message: 'position 5: the pouch may be used until 2027-05-03, before its intake 2027-05-04 08:00 (2027-05-04T06:00:00Z)',
  },
  {
    code: 'bad_window',
    path: '/timing/earlyMin',
    message:
      "position 2 may be taken 720 min early, from 2027-05-02T22:00:00Z, not after position 1 is due at 2027-05-03 08:00 (2027-05-03T06:00:00Z): position 1's window would close before it is due",
  },
  { code: 'zero_pills', path: '/pouches/1/pillCount', message: 'position 2 holds 0 pills' },
  { code: 'too_many_pills', path: '/pouches/1/pillCount', message: 'position 2 holds 21 pills, more than the plausible 20' },
  { code: 'pill_count_mismatch', path: '/pouches/0/pillCount', message: 'position 1: pillCount is 5, the drug counts add up to 4' },
  {
    code: 'dst_gap',
    ctx: { nowMs: utc('2027-03-01T00:00:00Z') },
    path: '/pouches/0/intakeTime',
    message:
      'position 1: 2027-03-28 02:30 does not exist in Europe/Copenhagen (clocks go forward 60 min); taken as 2027-03-28 03:30 (+02:00) = 2027-03-28T01:30:00Z',
  },
  {
    code: 'dst_ambiguous',
    ctx: { nowMs: utc('2027-10-01T00:00:00Z') },
    path: '/pouches/0/intakeTime',
    message:
      'position 1: 2027-10-31 02:30 exists twice in Europe/Copenhagen (clocks go back); taken as the first, 2027-10-31 02:30 (+02:00) = 2027-10-31T00:30:00Z',
  },
];

describe('validateManifest: one fixture per problem', () => {
  it('accepts the valid base fixture with no problem at all', () => {
    const r = validateManifest(fixture('valid'), CTX);
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.pouches).toHaveLength(8);
  });

  for (const c of CASES) {
    it(`${c.code}: ${c.path}`, () => {
      const r = validateManifest(fixture(c.code), { ...CTX, ...c.ctx });
      const found = r.problems.filter((p) => p.code === c.code);
      expect(found[0]).toMatchObject({ code: c.code, path: c.path, message: c.message, severity: PROBLEM_CODES[c.code].severity });
      // Each fixture has exactly one thing wrong (outside DST warnings, which are allowed).
      expect(new Set(r.problems.map((p) => p.code))).toEqual(new Set([c.code]));
      expect(r.ok).toBe(PROBLEM_CODES[c.code].severity === 'warning');
      expect(r.pouches).toHaveLength(r.ok ? 4 : 0);
    });
  }

  it('reports every schema problem of one file, each once, with its path', () => {
    const r = validateManifest(fixture('schema'), CTX);
    expect(r.problems.map((p) => `${p.path} ${p.message}`)).toEqual([
      '/pouches/2/pillCount missing',
      '/pouches/5/colour unexpected property',
      '/pouches/6/intakeTime expected a local time HH:MM from 00:00 to 23:59',
      '/printedLabel/name expected string length greater or equal to 1',
      '/rollId expected 1 to 16 capital letters or digits',
    ]);
  });

  it('reports problems of different kinds together, in document order', () => {
    const m = JSON.parse(fixture('valid').toString('utf8'));
    m.citizenId = 'C0000001';
    m.pouches[1].pillCount = 0;
    m.pouches[1].drugs = [];
    m.pouches[7].pillCount = 30;
    m.pouches[6].intakeTime = m.pouches[5].intakeTime;
    const r = validateManifest(JSON.stringify(m), CTX);
    expect(r.problems.map((p) => `${p.path} ${p.code}`)).toEqual([
      '/citizenId wrong_citizen',
      '/pouches/1/pillCount zero_pills',
      '/pouches/6/intakeTime duplicate_time',
      '/pouches/7/pillCount too_many_pills',
      '/pouches/7/pillCount pill_count_mismatch',
    ]);
  });

  it('has a case for every problem code a manifest can produce', () => {
    const covered = new Set<string>([...CASES.map((c) => c.code), 'too_large', 'too_many_problems', 'not_a_file']);
    // `internal` is the never-throw safety net; the fuzz test checks it never appears.
    const reachable = Object.keys(PROBLEM_CODES).filter((c) => c !== 'internal');
    expect(reachable.filter((c) => !covered.has(c))).toEqual([]);
  });

  it('too_large: refuses more than 2 MiB before parsing, as bytes or as text', () => {
    const big = Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20);
    for (const input of [big, big.toString('latin1')]) {
      const r = validateManifest(input, CTX);
      expect(r.problems).toEqual([
        { path: '/', code: 'too_large', severity: 'error', message: 'the file is more than 2097152 bytes (2 MiB); a roll manifest is far smaller' },
      ]);
    }
    // Exactly at the cap is still parsed (and is then simply not JSON).
    expect(validateManifest(Buffer.alloc(MAX_MANIFEST_BYTES, 0x20), CTX).problems[0]?.code).toBe('not_json');
    // Multi-byte characters count as bytes, not characters.
    expect(validateManifest('ø'.repeat(MAX_MANIFEST_BYTES / 2 + 1), CTX).problems[0]?.code).toBe('too_large');
  });

  it('too_many_problems: stops listing after the cap and says how many more there were', () => {
    const m = JSON.parse(fixture('valid').toString('utf8'));
    const pouch = m.pouches[0];
    m.pouches = Array.from({ length: 600 }, (_, i) => ({ ...pouch, position: i + 1, intakeTime: 'x', pillCount: 0, drugs: [] }));
    const r = validateManifest(JSON.stringify(m), CTX);
    expect(r.ok).toBe(false);
    expect(r.problems).toHaveLength(MAX_PROBLEMS + 1);
    // 600 bad times, 600 zero pills, one too many pouches.
    expect(r.problems.find((p) => p.code === 'too_many_problems')?.message).toBe('201 more problems were not listed');
  });

  it('never repeats the printed name or birth date in a message', () => {
    const m = JSON.parse(fixture('valid').toString('utf8'));
    m.printedLabel = { name: 'Ellen Bodil Sørensen', birthDate: '1940-02-30', extra: 'Ellen' };
    m.pouches[0].drugs[0].name = 'Hemmeligmycin';
    m.pouches[0].pillCount = 9;
    const r = validateManifest(JSON.stringify(m), CTX);
    expect(r.problems.map((p) => p.code).sort()).toEqual(['bad_date', 'pill_count_mismatch', 'schema']);
    const all = JSON.stringify(r.problems);
    for (const secret of ['Ellen', 'Sørensen', '1940', 'Hemmeligmycin']) expect(all).not.toContain(secret);
  });

  it('gives the schedule of a valid roll: slots, labels, UTC instants, merged timing', () => {
    const m = JSON.parse(fixture('valid').toString('utf8'));
    m.timing = { overdueAfterMin: 45 };
    m.pouches[3].timing = { closeAfterMin: 90 };
    delete m.timeZone;
    const r = validateManifest(`\uFEFF${JSON.stringify(m)}`, CTX);
    expect(r.ok).toBe(true);
    expect(r.manifest?.timeZone).toBe('Europe/Copenhagen');
    expect(r.pouches[0]).toEqual({
      rollId: 'R27W18A',
      position: 1,
      slot: 0,
      label: 'R27W18A-001',
      intakeAtMs: utc('2027-05-03T06:00:00Z'),
      pillCount: 4,
      timing: { overdueAfterMin: 45 },
    });
    expect(r.pouches[3]).toMatchObject({ slot: 3, label: 'R27W18A-004', intakeAtMs: utc('2027-05-03T20:00:00Z'), timing: { overdueAfterMin: 45, closeAfterMin: 90 } });
    expect(r.pouches.map((p) => p.position)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('accepts the next roll that follows the loaded one without a gap, and checks the citizen only when told', () => {
    const m = JSON.parse(fixture('roll_overlap').toString('utf8'));
    m.rollId = 'R27W18B';
    expect(validateManifest(JSON.stringify(m), { ...CTX, loaded: LOADED }).ok).toBe(false);
    // The base roll starts 2027-05-03 08:00 local, 10 h after the loaded roll's last pouch.
    expect(validateManifest(fixture('valid'), { ...CTX, loaded: LOADED }).problems).toEqual([]);
    expect(validateManifest(fixture('wrong_citizen'), { slotCount: 56, nowMs: CTX.nowMs }).ok).toBe(true);
  });

  it('a roll with a weekly pouch may start up to its own longest interval after the loaded roll', () => {
    const m = JSON.parse(fixture('valid').toString('utf8'));
    m.period = { from: '2027-05-03', to: '2027-05-31' };
    m.pouches = [0, 7, 14, 21].map((d, i) => ({ ...m.pouches[0], position: i + 1, intakeDate: `2027-05-${String(3 + d).padStart(2, '0')}` }));
    const weekly = { ...LOADED, lastIntakeAtMs: utc('2027-04-26T06:00:00Z') };
    expect(validateManifest(JSON.stringify(m), { ...CTX, loaded: weekly }).problems).toEqual([]);
    const late = { ...LOADED, lastIntakeAtMs: utc('2027-04-25T06:00:00Z') };
    expect(validateManifest(JSON.stringify(m), { ...CTX, loaded: late }).problems.map((p) => p.code)).toEqual(['roll_gap']);
  });

  it('answers input that is neither text nor bytes with not_json', () => {
    for (const input of [undefined, null, 42, {}, []] as unknown as string[]) {
      expect(validateManifest(input, CTX).problems.map((p) => p.code)).toEqual(['not_json']);
    }
  });
});

describe('examples and the JSON Schema document', () => {
  const example = (name: string) => readFileSync(new URL(`../../../firmware-host/examples/${name}.json`, import.meta.url));

  it('the two-week example is a valid roll of 4 doses a day, ~4.4 pills a dose, filling the 56-slot carousel', () => {
    const r = validateManifest(example('roll-2week'), { ...CTX, nowMs: utc('2027-01-01T00:00:00Z') });
    expect(r.problems).toEqual([]);
    expect(r.pouches).toHaveLength(56);
    const days = new Set(r.manifest?.pouches.map((p) => p.intakeDate));
    expect(days.size).toBe(14);
    const mean = r.pouches.reduce((a, p) => a + p.pillCount, 0) / r.pouches.length;
    expect(mean).toBeGreaterThan(4.3);
    expect(mean).toBeLessThan(4.5);
  });

  it('the JSON Schema document is plain JSON and agrees with the TypeBox schema on the examples', () => {
    const doc = MANIFEST_JSON_SCHEMA as { $schema: string; required: string[]; properties: Record<string, unknown> };
    expect(JSON.parse(JSON.stringify(doc))).toEqual(doc);
    expect(doc.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(doc.required).toEqual(['format', 'rollId', 'citizenId', 'printedLabel', 'period', 'pouches']);
    expect(Object.keys(doc.properties)).toContain('timing');
    for (const name of ['roll-2week', 'roll-dst-march-2027', 'roll-dst-october-2027']) {
      expect(checkManifest.Check(JSON.parse(example(name).toString('utf8')))).toBe(true);
    }
  });

  it('the README shows a valid manifest and documents every problem code', () => {
    const readme = readFileSync(new URL('../../../firmware-host/src/roll/README.md', import.meta.url), 'utf8');
    const json = /```json\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    const r = validateManifest(json, { ...CTX, citizenId: 'C7F3A9B2' });
    expect(r.problems).toEqual([]);
    expect(r.pouches.map((p) => p.timing)).toEqual([{ overdueAfterMin: 45 }, { overdueAfterMin: 45, closeAfterMin: 90 }]);
    const documented = [...readme.matchAll(/^\| `([a-z_0-9]+)` \| (error|warning) \|/gm)].map((m) => `${m[1]} ${m[2]}`);
    expect(documented.sort()).toEqual(Object.entries(PROBLEM_CODES).map(([code, d]) => `${code} ${d.severity}`).sort());
  });
});
