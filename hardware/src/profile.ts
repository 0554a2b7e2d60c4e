// Hardware profiles: the mechanics and timings of one robot model and revision, validated by one schema.
//
// | field                   | unit      | meaning                                                          |
// |-------------------------|-----------|------------------------------------------------------------------|
// | id                      | —         | `<model>-<revision>`, the file name and the HELLO `hw` field     |
// | model, revision         | —         | human names                                                      |
// | slotCount               | slots     | pouch positions on the carousel                                  |
// | stepsPerSlot            | steps     | stepper steps between two slots                                  |
// | stepsPerSecond          | steps/s   | carousel speed                                                   |
// | labelReadMs             | ms        | time for the label reader to read the pouch at the position     |
// | cutMs                   | ms        | time to cut a pouch open                                         |
// | pillFallMs.min/max      | ms        | spread of a pill's fall from cut to pill sensor                  |
// | settleMs                | ms        | counting window after the cut (or shake) before reporting       |
// | shakeMs                 | ms        | duration of a shake of an open pouch                             |
// | pillPulseMs.nominal/sd  | ms        | pill-sensor pulse width of one pill (normal distribution)        |
// | pillPulseMs.min/max     | ms        | plausible width of one pill; shorter is noise, longer is overlap |
// | minPulseGapMs           | ms        | closer pulses merge into one long pulse                          |
// | cupDebounceMs           | ms        | cup sensor debounce                                              |
// | baudRate                | bit/s     | serial line speed                                                |
// | heartbeatMs             | ms        | heartbeat interval, both directions                              |
// | missedHeartbeats        | count     | heartbeats missed before the link is declared lost               |
// | leaseMs                 | ms        | lease carried by motion commands                                 |
// | firmware                | —         | firmware version the simulator reports                           |

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';

const Ms = (description: string, minimum = 0, maximum = 600_000) => Type.Number({ minimum, maximum, description });
const Range = (description: string) => Type.Object({ min: Ms('minimum'), max: Ms('maximum') }, { additionalProperties: false, description });

export const HardwareProfileSchema = Type.Object(
  {
    id: Type.String({ pattern: '^[a-z0-9]+(-[a-z0-9]+)*$', maxLength: 24 }),
    model: Type.String({ maxLength: 64 }),
    revision: Type.String({ maxLength: 16 }),
    slotCount: Type.Integer({ minimum: 1, maximum: 256 }),
    stepsPerSlot: Type.Integer({ minimum: 1, maximum: 100_000 }),
    stepsPerSecond: Type.Number({ exclusiveMinimum: 0, maximum: 1_000_000 }),
    labelReadMs: Ms('label read time'),
    cutMs: Ms('cut time'),
    pillFallMs: Range('fall time spread'),
    settleMs: Ms('counting window'),
    shakeMs: Ms('shake time'),
    pillPulseMs: Type.Object(
      { nominal: Ms('nominal', 1, 99), sd: Ms('standard deviation', 0, 50), min: Ms('min plausible', 1, 99), max: Ms('max plausible', 1, 99) },
      { additionalProperties: false },
    ),
    minPulseGapMs: Ms('merge gap', 0, 1000),
    cupDebounceMs: Ms('debounce', 0, 5000),
    baudRate: Type.Integer({ minimum: 1200, maximum: 4_000_000 }),
    heartbeatMs: Ms('heartbeat', 50, 60_000),
    missedHeartbeats: Type.Integer({ minimum: 1, maximum: 100 }),
    leaseMs: Ms('lease', 100, 60_000),
    firmware: Type.String({ pattern: '^[A-Za-z0-9._-]{1,16}$' }),
  },
  { additionalProperties: false },
);
export type HardwareProfile = Static<typeof HardwareProfileSchema>;

const check = TypeCompiler.Compile(HardwareProfileSchema);
export const PROFILES_DIR = fileURLToPath(new URL('../profiles/', import.meta.url));
export const DEFAULT_PROFILE_ID = 'dosis-r1';

export class ProfileError extends Error {
  readonly code = 'DOSIS_ERR_PROFILE';
}

/** Validates a parsed profile; throws ProfileError naming every problem. */
export function parseProfile(data: unknown, source = 'profile'): HardwareProfile {
  if (!check.Check(data)) {
    const problems = [...check.Errors(data)].slice(0, 10).map((e) => `${e.path || '/'}: ${e.message}`);
    throw new ProfileError(`${source} is not a valid hardware profile: ${problems.join('; ')}`);
  }
  if (data.pillPulseMs.min > data.pillPulseMs.max) throw new ProfileError(`${source}: pillPulseMs.min is above pillPulseMs.max`);
  if (data.pillFallMs.min > data.pillFallMs.max) throw new ProfileError(`${source}: pillFallMs.min is above pillFallMs.max`);
  return data;
}

/** Loads a profile by id (a file in hardware/profiles/) or by path to a JSON file. */
export function loadProfile(idOrPath: string = DEFAULT_PROFILE_ID): HardwareProfile {
  const path = /^[a-z0-9-]+$/.test(idOrPath) ? `${PROFILES_DIR}${idOrPath}.json` : idOrPath;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ProfileError(`cannot read hardware profile ${idOrPath}: ${(err as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ProfileError(`${path} is not JSON: ${(err as Error).message}`);
  }
  return parseProfile(data, path);
}

/** Time to turn the carousel from one slot to another, the short way round. */
export function rotationMs(p: HardwareProfile, from: number, to: number): number {
  const d = Math.abs(to - from) % p.slotCount;
  const slots = Math.min(d, p.slotCount - d);
  return (slots * p.stepsPerSlot * 1000) / p.stepsPerSecond;
}
