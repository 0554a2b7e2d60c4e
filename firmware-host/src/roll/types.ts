// What the dispensing side needs of a loaded roll: one scheduled pouch per dose.

/** Dose timing windows, in minutes relative to the intake time (DESIGN.md "Dose timing"). */
export type DoseTiming = {
  /** A dose may be taken this long before its time, on the button. */
  earlyMin: number;
  /** Reminders repeat this often once due. */
  reminderEveryMin: number;
  /** Not taken this long after due: overdue, the alarm centre is told. */
  overdueAfterMin: number;
  /** Not taken this long after due (or when the next dose's early window opens, if sooner): missed. */
  closeAfterMin: number;
};

export const DEFAULT_TIMING: DoseTiming = { earlyMin: 30, reminderEveryMin: 5, overdueAfterMin: 30, closeAfterMin: 120 };

/** How to take a dose, in the languages the manifest gives. */
export type PouchInstructions = { da?: string | undefined; en?: string | undefined };

export type ScheduledPouch = {
  rollId: string;
  /** 1-based position on the roll. */
  position: number;
  /** 0-based carousel slot the pouch sits in (position − 1). */
  slot: number;
  /** The label printed on the pouch, as the MCU's label reader reads it: `<rollId>-<position, 3 digits>`. */
  label: string;
  /** Intake time as UTC milliseconds, resolved from the manifest's local time. */
  intakeAtMs: number;
  pillCount: number;
  /** Per-dose overrides of the roll's timing. */
  timing?: Partial<DoseTiming> | undefined;
  /** The end of the pouch's use-by date (UTC ms); a pouch past it is never dispensed. */
  useByMs?: number | undefined;
  /** How to take the dose ("tages med mad"), as the manifest words it; shown with the dose. */
  instructions?: PouchInstructions | undefined;
};

export { pouchLabel } from '../../../protocol/src/label.js';
