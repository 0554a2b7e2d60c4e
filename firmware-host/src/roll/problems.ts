// Every problem a roll manifest can have: its stable code, its severity, and what it means.
//
// Errors make a manifest invalid; warnings are reported and the roll may still be loaded.

export type Severity = 'error' | 'warning';

export type ManifestProblem = {
  /** JSON Pointer into the manifest (`/pouches/3/pillCount`), `/` for the whole file, `line:column` for a syntax error. */
  path: string;
  code: ProblemCode;
  severity: Severity;
  /** Plain words; never the printed name or birth date, never drug names. */
  message: string;
  /** For not_json: where the syntax error is, 1-based. */
  line?: number;
  column?: number;
};

export const PROBLEM_CODES = {
  too_large: { severity: 'error', meaning: 'the file is larger than the cap (2 MiB); checked before anything is parsed' },
  not_utf8: { severity: 'error', meaning: 'the bytes are not UTF-8 text' },
  not_json: { severity: 'error', meaning: 'the text is not JSON; the path is line:column of the first syntax error' },
  not_a_file: { severity: 'error', meaning: 'the path is not a regular file (a directory, FIFO, device or socket); nothing was read' },
  duplicate_key: { severity: 'error', meaning: 'an object names one property twice; the message gives the line and column of the repeat' },
  schema: { severity: 'error', meaning: 'a field is missing, unexpected, of the wrong type or out of its range' },
  bad_date: { severity: 'error', meaning: 'a date has the YYYY-MM-DD form but is not a real calendar date (or is outside 1900–2199)' },
  bad_time_zone: { severity: 'error', meaning: 'the time zone is not an IANA zone this robot knows' },
  bad_period: { severity: 'error', meaning: 'the period ends before it starts' },
  bad_timing: { severity: 'error', meaning: 'the timing windows contradict each other (overdue must come before close)' },
  wrong_citizen: { severity: 'error', meaning: 'the manifest is for another citizen than the one this robot serves' },
  roll_already_loaded: { severity: 'error', meaning: 'the roll id is the roll now loaded' },
  too_many_pouches: { severity: 'error', meaning: 'more pouches than the carousel has slots' },
  duplicate_position: { severity: 'error', meaning: 'two pouches claim one position' },
  position_order: { severity: 'error', meaning: 'the pouches are not listed in position order' },
  position_gap: { severity: 'error', meaning: 'positions do not run 1, 2, 3, … without a gap' },
  out_of_order: { severity: 'error', meaning: 'a pouch is due before the pouch at the position before it' },
  duplicate_time: { severity: 'error', meaning: 'two pouches are due at the same instant' },
  outside_period: { severity: 'error', meaning: "a pouch's intake date is outside the roll's period" },
  past_intake: { severity: 'error', meaning: 'a pouch is due before now' },
  roll_overlap: { severity: 'error', meaning: 'the roll starts before the loaded roll ends' },
  roll_gap: { severity: 'error', meaning: 'the roll starts too long after the loaded roll ends: doses would be missing' },
  roll_skips_doses: { severity: 'error', meaning: 'the roll starts after doses of the loaded roll not yet dispensed: they would be dropped' },
  roll_overlap_returned: { severity: 'warning', meaning: "the loaded roll's pouches not yet dispensed come back, as the staff chose; the receipt lists them" },
  expires_before_intake: { severity: 'error', meaning: "a pouch's use-by date ends before its intake time" },
  bad_window: { severity: 'error', meaning: "a dose's window would close before it opens or before the dose is due (the next dose's early window starts too soon)" },
  zero_pills: { severity: 'error', meaning: 'a pouch holds no pills' },
  too_many_pills: { severity: 'error', meaning: 'a pouch holds more pills than is plausible (default more than 20)' },
  pill_count_mismatch: { severity: 'error', meaning: "a pouch's pillCount is not the sum of its drug counts" },
  dst_gap: { severity: 'warning', meaning: 'a local time does not exist (clocks go forward); it is moved forward by the gap' },
  dst_ambiguous: { severity: 'warning', meaning: 'a local time exists twice (clocks go back); the first occurrence is used' },
  too_many_problems: { severity: 'error', meaning: 'reporting stopped after 1000 problems' },
  internal: { severity: 'error', meaning: 'the validator itself failed; the manifest is treated as invalid' },
} as const satisfies Record<string, { severity: Severity; meaning: string }>;

export type ProblemCode = keyof typeof PROBLEM_CODES;
