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
// | citizen.tooEarlyPressRate  | share of doses with an extra press before the early window opens             |
// | citizen.overduePressRate   | share of doses pressed only once overdue (still inside the window)           |
// | citizen.cupAwayRate        | share of doses before which the citizen carries the empty cup away a while  |
// | pharmacy.<error>Rate       | share of pouches packed wrong: oneMore, oneFewer (than printed), empty,      |
// |                            | foreign (a pill of another citizen's in addition)                            |
// | host.crashRate             | share of dosings during which the host process dies and boots again         |
// | host.powerCutRate          | share of dosings during which host and MCU lose power together              |
// | network.<fault>Rate        | robot → alarm centre: lostRequest, lostResponse, serverError (503), timeout  |
// |                            | per request; centreRestart per dosing                                        |
// | care.pauseRate             | share of doses at which the staff pause the robot (a hospital stay)          |
// | care.pauseDoses            | { min, max }: doses the pause spans                                          |
// | care.resumeEarlyRate       | share of pauses (of two doses or more) the staff end early: the rest resume   |
// | care.travelRate            | share of doses at which the staff release the next doses for a travel pack   |
// | care.travelDoses           | { min, max }: doses released for travel                                      |
// | care.withdrawRate          | share of doses at which the staff withdraw pouches (a prescription change)   |
// | care.withdrawFromTimeRate  | share of withdrawals from a time (the rest of the roll); the others by label |
// | care.withdrawDoses         | { min, max }: pouches withdrawn by label                                     |
// | care.openWindowRate        | share of care actions taken while the first dose's window is open (a pause  |
// |                            | before it is due; travel and withdrawal while the robot reminds)             |
// | care.confusedPressRate     | share of doses out of dispensing the citizen still presses for               |
// | aim.<event>Rate            | rare events aimed at the moments that matter, per the opportunity that       |
// |                            | device-sim/src/world/aim.ts names (the host down during a release, ...)      |

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { FAULT_NAMES } from '../faults.js';
import { Random } from '../random.js';
import { AIM_EVENTS } from '../world/aim.js';

const Rate = Type.Number({ minimum: 0, maximum: 1 });
/** Most doses one care action takes out of dispensing (a two-week stay at four doses a day). */
export const CARE_MAX_DOSES = 56;
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
        takeCupDelaySec: Span(3600),
        tooEarlyPressRate: Type.Optional(Rate),
        overduePressRate: Type.Optional(Rate),
        cupAwayRate: Type.Optional(Rate),
      },
      { additionalProperties: false },
    ),
    pharmacy: Type.Optional(Type.Object({ oneMoreRate: Rate, oneFewerRate: Rate, emptyRate: Rate, foreignRate: Rate }, { additionalProperties: false })),
    host: Type.Optional(Type.Object({ crashRate: Rate, powerCutRate: Rate }, { additionalProperties: false })),
    network: Type.Optional(Type.Object(
      { lostRequestRate: Rate, lostResponseRate: Rate, serverErrorRate: Rate, timeoutRate: Rate, centreRestartRate: Rate },
      { additionalProperties: false },
    )),
    care: Type.Optional(Type.Object(
      {
        pauseRate: Rate, pauseDoses: Span(CARE_MAX_DOSES), resumeEarlyRate: Rate,
        travelRate: Rate, travelDoses: Span(CARE_MAX_DOSES),
        withdrawRate: Rate, withdrawFromTimeRate: Rate, withdrawDoses: Span(CARE_MAX_DOSES),
        openWindowRate: Rate, confusedPressRate: Rate,
      },
      { additionalProperties: false },
    )),
    aim: Type.Optional(Type.Partial(Type.Object(Object.fromEntries(AIM_EVENTS.map((e) => [`${e}Rate`, Rate])), { additionalProperties: false }))),
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
  if (data.pharmacy) {
    const ph = data.pharmacy;
    if (ph.oneMoreRate + ph.oneFewerRate + ph.emptyRate + ph.foreignRate > 1) throw new SoakProfileError(`${source}: /pharmacy: the error rates add up to more than 1`);
  }
  if (data.care) {
    const c = data.care;
    if (c.pauseRate + c.travelRate + c.withdrawRate > 1) throw new SoakProfileError(`${source}: /care: pauseRate, travelRate and withdrawRate add up to more than 1`);
    for (const [k, s] of Object.entries({ pauseDoses: c.pauseDoses, travelDoses: c.travelDoses, withdrawDoses: c.withdrawDoses })) {
      if (s.min > s.max) throw new SoakProfileError(`${source}: /care/${k}: min ${s.min} is above max ${s.max}`);
      if (s.min < 1 || !Number.isInteger(s.min) || !Number.isInteger(s.max)) throw new SoakProfileError(`${source}: /care/${k}: whole doses, at least 1`);
    }
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

/**
 * A swarm episode's profile: from the episode's seed, each fault and each rate of the world is switched on or off
 * (half the time each) and, when on, scaled by a factor from 1/10 to 10 (log-uniform), so rare combinations of
 * faults meet often across a run. The same seed always draws the same profile: a replay runs it again.
 */
export function swarmProfile(p: SoakProfile, episodeSeed: number): SoakProfile {
  const r = new Random((episodeSeed ^ 0x5a4a_a11) >>> 0);
  const draw = (rate: number | undefined): number => (rate && rate > 0 && r.chance(0.5) ? Math.min(0.5, rate * 10 ** r.between(-1, 1)) : 0);
  const quarter = (rate: number) => Math.min(0.25, draw(rate));
  const third = (rate: number) => Math.min(1 / 3, draw(rate));
  const faults = Object.fromEntries(Object.entries(p.faults).map(([k, v]) => [k, draw(v)]));
  const c = p.citizen;
  return {
    ...p,
    faults,
    citizen: {
      ...c,
      tooEarlyPressRate: draw(c.tooEarlyPressRate),
      overduePressRate: draw(c.overduePressRate),
      cupAwayRate: draw(c.cupAwayRate),
    },
    // Each packing error at most a quarter of the pouches, so together they never pass 1.
    ...(p.pharmacy ? { pharmacy: { oneMoreRate: quarter(p.pharmacy.oneMoreRate), oneFewerRate: quarter(p.pharmacy.oneFewerRate), emptyRate: quarter(p.pharmacy.emptyRate), foreignRate: quarter(p.pharmacy.foreignRate) } } : {}),
    ...(p.host ? { host: { crashRate: draw(p.host.crashRate), powerCutRate: draw(p.host.powerCutRate) } } : {}),
    ...(p.network ? { network: Object.fromEntries(Object.entries(p.network).map(([k, v]) => [k, draw(v)])) as NonNullable<SoakProfile['network']> } : {}),
    // The three care actions each at most a third of the doses, so together they never pass 1.
    ...(p.care ? { care: { ...p.care, pauseRate: third(p.care.pauseRate), travelRate: third(p.care.travelRate), withdrawRate: third(p.care.withdrawRate), confusedPressRate: draw(p.care.confusedPressRate) } } : {}),
    ...(p.aim ? { aim: Object.fromEntries(Object.entries(p.aim).map(([k, v]) => [k, draw(v)])) } : {}),
  };
}
