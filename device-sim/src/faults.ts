// The simulator's named faults, switchable at run time (like OctoPrint's virtual printer), with their rates.
//
// | name              | opportunity                      | effect                                                                 |
// |-------------------|----------------------------------|------------------------------------------------------------------------|
// | pillStuck         | per pouch, at its RELEASE        | one pill stays in the pouch until a SHAKE frees it (empty=0)           |
// | pillsStuckForGood | per pouch, at its RELEASE        | one pill never falls, not even on SHAKE; empty reads 0                 |
// | overlap           | per falling pill                 | the pill passes the sensor together with the next: one long pulse      |
// | ghostPulse        | per RELEASE / SHAKE              | an extra 1–4 ms pulse with no pill                                     |
// | missedPulse       | per falling pill                 | the pill falls into the cup but the sensor gives no pulse              |
// | jam               | per ROTATE                       | carousel stops: ROTATED err=JAM, then LATCHED reason=JAM until CLEAR   |
// | slip              | per ROTATE                       | ends one slot off; the index still reports the requested slot, only    |
// |                   |                                  | the label read shows it                                                |
// | labelUnreadable   | per ROTATE                       | ROTATED err=LABEL, no label                                            |
// | corruptByte       | per byte, both directions        | one bit of the byte flips                                              |
// | dropLine          | per line, both directions        | the line is lost                                                       |
// | duplicateLine     | per line, both directions        | the line arrives twice                                                 |
// | mcuReset          | per accepted motion command      | MCU resets at a random point during the motion: RAM, seq window and    |
// |                   |                                  | id memory lost, new boot id, BOOT sent; carousel, pouches, cup and the |
// |                   |                                  | non-volatile cut map survive                                           |
// | notAnswering      | per received host frame          | the MCU goes silent for 5 s: reads nothing, sends nothing              |
// | emptySensorWrong  | per RELEASED / SHAKEN            | the pouch-empty flag says the opposite of the truth                    |
// | driverFault       | per new motion command           | the motor driver trips as it is energised (over-current or             |
// |                   |                                  | over-temperature): nothing moves, LATCHED reason=FAULT, the command is |
// |                   |                                  | refused ERR:LATCHED; CLEAR resets the driver                           |

export const FAULT_NAMES = ['pillStuck', 'pillsStuckForGood', 'overlap', 'ghostPulse', 'missedPulse', 'jam', 'slip',
  'labelUnreadable', 'corruptByte', 'dropLine', 'duplicateLine', 'mcuReset', 'notAnswering', 'emptySensorWrong', 'driverFault'] as const;
export type FaultName = (typeof FAULT_NAMES)[number];
export type FaultRates = Record<FaultName, number>;

/** How long notAnswering keeps the MCU silent. */
export const NOT_ANSWERING_MS = 5000;

export class FaultSpecError extends Error {
  readonly code = 'DOSIS_ERR_FAULT_SPEC';
}

const NAME_SET: ReadonlySet<string> = new Set(FAULT_NAMES);

export function isFaultName(name: string): name is FaultName {
  return NAME_SET.has(name);
}

export function noFaults(): FaultRates {
  return Object.fromEntries(FAULT_NAMES.map((n) => [n, 0])) as FaultRates;
}

/** Parses "jam=0.01,pillStuck=0.02" (spaces allowed, empty spec = none); throws FaultSpecError naming the bad part. */
export function parseFaults(spec: string): Partial<FaultRates> {
  const out: Partial<FaultRates> = {};
  for (const raw of spec.split(',')) {
    const part = raw.trim();
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new FaultSpecError(`fault ${JSON.stringify(part)} is not name=rate`);
    const name = part.slice(0, eq).trim();
    const text = part.slice(eq + 1).trim();
    if (!isFaultName(name)) throw new FaultSpecError(`unknown fault ${JSON.stringify(name)}; known: ${FAULT_NAMES.join(', ')}`);
    const rate = Number(text);
    if (text === '' || !Number.isFinite(rate) || rate < 0 || rate > 1) {
      throw new FaultSpecError(`rate of ${name} must be a number from 0 to 1, got ${JSON.stringify(text)}`);
    }
    out[name] = rate;
  }
  return out;
}
