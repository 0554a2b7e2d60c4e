// Soak fault profiles: fault rates, pills per dose and the citizen's behaviour, validated by one schema.
//
// | field                      | meaning                                                                       |
// |----------------------------|-------------------------------------------------------------------------------|
// | name                       | profile name (the file name without .json)                                    |
// | description                | one line                                                                      |
// | assumptions                | why these rates: where each figure comes from                                 |
// | faults.<name>              | rate of a simulator fault, 0–1, per the opportunity device-sim/README.md names |
// | pillsPerDose.weights       | { "<pills>": weight }: the distribution of pills per pouch (1–20)             |
// | citizen.pressDelayMin      | { min, max }: minutes after the intake time the citizen presses the button   |
// | citizen.earlyPressRate     | share of doses taken early (pressed inside the early window instead)         |
// | citizen.forgetRate         | share of doses never taken (they end missed, and are not dosings)            |
// | citizen.takeCupDelaySec    | { min, max }: seconds from "take the cup" to the cup lifted                  |

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { FAULT_NAMES } from '../faults.js';

const Rate = Type.Number({ minimum: 0, maximum: 1 });
const Span = (max: number) => Type.Object({ min: Type.Number({ minimum: 0, maximum: max }), max: Type.Number({ minimum: 0, maximum: max }) }, { additionalProperties: false });

export const SoakProfileSchema = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z0-9-]{1,32}$' }),
    description: Type.String({ maxLength: 200 }),
    assumptions: Type.Array(Type.String({ maxLength: 400 }), { maxItems: 40 }),
    faults: Type.Partial(Type.Object(Object.fromEntries(FAULT_NAMES.map((n) => [n, Rate])), { additionalProperties: false })),
    pillsPerDose: Type.Object(
      { weights: Type.Record(Type.String({ pattern: '^([1-9]|1[0-9]|20)$' }), Type.Number({ minimum: 0, maximum: 1e6 })) },
      { additionalProperties: false },
    ),
    citizen: Type.Object(
      {
        pressDelayMin: Span(29),
        earlyPressRate: Rate,
        forgetRate: Rate,
        takeCupDelaySec: Span(600),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
export type SoakProfile = Static<typeof SoakProfileSchema>;

const check = TypeCompiler.Compile(SoakProfileSchema);
export const SOAK_PROFILES_DIR = fileURLToPath(new URL('../../profiles/', import.meta.url));

export class SoakProfileError extends Error {
  readonly code = 'DOSIS_ERR_SOAK_PROFILE';
}

/** Validates a parsed profile; the error names the field and why. */
export function parseSoakProfile(data: unknown, source: string): SoakProfile {
  if (!check.Check(data)) {
    const e = [...check.Errors(data)].slice(0, 5).map((x) => `${x.path || '/'}: ${x.message}`);
    throw new SoakProfileError(`${source}: ${e.join('; ')}`);
  }
  const weights = Object.values(data.pillsPerDose.weights);
  if (weights.length === 0 || weights.reduce((a, b) => a + b, 0) <= 0) throw new SoakProfileError(`${source}: /pillsPerDose/weights: needs at least one positive weight`);
  for (const [k, s] of Object.entries({ pressDelayMin: data.citizen.pressDelayMin, takeCupDelaySec: data.citizen.takeCupDelaySec })) {
    if (s.min > s.max) throw new SoakProfileError(`${source}: /citizen/${k}: min ${s.min} is above max ${s.max}`);
  }
  return data;
}

/** Loads a shipped profile by name (none, reference, harsh) or a JSON file by path. */
export function loadSoakProfile(nameOrPath: string): SoakProfile {
  const path = /^[a-z0-9-]+$/.test(nameOrPath) ? `${SOAK_PROFILES_DIR}${nameOrPath}.json` : nameOrPath;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new SoakProfileError(`cannot read soak profile ${nameOrPath}: ${(err as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new SoakProfileError(`${path} is not JSON: ${(err as Error).message}`);
  }
  return parseSoakProfile(data, path);
}

/** Mean pills per dose of a profile's distribution. */
export function meanPills(p: SoakProfile): number {
  let sum = 0;
  let weight = 0;
  for (const [k, w] of Object.entries(p.pillsPerDose.weights)) {
    sum += Number(k) * w;
    weight += w;
  }
  return sum / weight;
}
