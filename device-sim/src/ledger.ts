// Ground truth of what the simulated robot physically did and showed, whatever its sensors said: what the referee reads.
//
// Besides what fell from which pouch, the ledger keeps what a person in the
// room could see and do: each button press, each lift of the cup (by the
// citizen or by the care staff emptying it), every mode the light and sound
// were set to, and what the robot's screen asked for. The referee judges each
// dose from these alone, never from the controller's own records.

export type LedgerEntry = {
  atMs: number;
  commandId: string;
  slot: number;
  label: string | null;
  action: 'release' | 'shake';
  pillsFell: number;
  pulsesReported: number;
  pillsLeftInPouch: number;
  /** Pills already in the cup when these fell (a release onto an untaken dose breaks invariant 3). */
  cupPillsBefore: number;
  /** Whether the cup was in place to catch them (pills falling without it are lost on the tray). */
  cupPresent: boolean;
};

/** Who lifted the cup: the citizen taking a dose, or the care staff emptying it. */
export type Lifter = 'citizen' | 'staff';
export type CupTake = { atMs: number; pills: number; by: Lifter };
export type MotionName = 'ROTATE' | 'RELEASE' | 'SHAKE';
/** A motion the MCU began to execute (physically). */
export type MotionRecord = { atMs: number; commandId: string; name: MotionName; slot: number };
/** The light and sound mode the MCU was set to (`off` after every power-up). */
export type SignalRecord = { atMs: number; mode: string };
/** What the robot's screen asks of the citizen (a notice such as `cup_missing`), or null when it asks nothing special. */
export type ScreenRecord = { atMs: number; notice: string | null };

export class Ledger {
  readonly #entries: LedgerEntry[] = [];
  readonly #executions = new Map<string, number>();
  readonly #cuts = new Map<number, number>();
  readonly #takes: CupTake[] = [];
  readonly #presses: number[] = [];
  readonly #motions: MotionRecord[] = [];
  readonly #signals: SignalRecord[] = [];
  readonly #screen: ScreenRecord[] = [];

  /** `cupPills` reads the physical cup, which the ledger does not own. */
  constructor(private readonly cupPills: () => number = () => 0) {}

  get entries(): readonly LedgerEntry[] {
    return this.#entries;
  }

  get takes(): readonly CupTake[] {
    return this.#takes;
  }

  /** Times the citizen pressed the button. */
  get presses(): readonly number[] {
    return this.#presses;
  }

  get motions(): readonly MotionRecord[] {
    return this.#motions;
  }

  get signals(): readonly SignalRecord[] {
    return this.#signals;
  }

  get screen(): readonly ScreenRecord[] {
    return this.#screen;
  }

  /** The light's mode at `atMs` (the last one set at or before it). */
  signalAt(atMs: number): string {
    let mode = 'off';
    for (const s of this.#signals) {
      if (s.atMs > atMs) break;
      mode = s.mode;
    }
    return mode;
  }

  /** Times the MCU physically executed this command id (ROTATE/RELEASE/SHAKE). */
  executions(commandId: string): number {
    return this.#executions.get(commandId) ?? 0;
  }

  /** Times the pouch in this slot was cut (must never exceed 1). */
  cutCount(slot: number): number {
    return this.#cuts.get(slot) ?? 0;
  }

  pillsFellFromSlot(slot: number): number {
    let n = 0;
    for (const e of this.#entries) if (e.slot === slot) n += e.pillsFell;
    return n;
  }

  pillsInCup(): number {
    return this.cupPills();
  }

  clear(): void {
    this.#entries.length = 0;
    this.#executions.clear();
    this.#cuts.clear();
    this.#takes.length = 0;
    this.#presses.length = 0;
    this.#motions.length = 0;
    this.#signals.length = 0;
    this.#screen.length = 0;
  }

  /**
   * Forgets what happened before `atMs` (the referee has judged it); the
   * per-command execution counts and per-slot cut counts stay, so a second
   * execution or a second cut is still seen.
   */
  forgetBefore(atMs: number): void {
    const keep = <T>(list: T[], at: (x: T) => number) => {
      let i = 0;
      while (i < list.length && at(list[i]!) < atMs) i++;
      list.splice(0, i);
    };
    keep(this.#entries, (e) => e.atMs);
    keep(this.#takes, (t) => t.atMs);
    keep(this.#presses, (t) => t);
    keep(this.#motions, (m) => m.atMs);
    keep(this.#screen, (s) => s.atMs);
    // The light's mode before `atMs` is still what it shows: keep the last one.
    let i = 0;
    while (i + 1 < this.#signals.length && this.#signals[i + 1]!.atMs < atMs) i++;
    this.#signals.splice(0, i);
  }

  // ---- written by the simulator only

  noteExecution(commandId: string, name: MotionName, slot: number, atMs: number): void {
    this.#executions.set(commandId, this.executions(commandId) + 1);
    this.#motions.push({ atMs, commandId, name, slot });
  }

  noteCut(slot: number): void {
    this.#cuts.set(slot, this.cutCount(slot) + 1);
  }

  /** Adds an entry; the simulator fills in pulsesReported when (if) the MCU reports. */
  addEntry(entry: LedgerEntry): LedgerEntry {
    this.#entries.push(entry);
    return entry;
  }

  noteTake(atMs: number, pills: number, by: Lifter): void {
    this.#takes.push({ atMs, pills, by });
  }

  notePress(atMs: number): void {
    this.#presses.push(atMs);
  }

  noteSignal(atMs: number, mode: string): void {
    const last = this.#signals.at(-1);
    if (last?.mode !== mode) this.#signals.push({ atMs, mode });
  }

  // ---- written by whoever shows the robot's screen (the screen is the host's, the ledger records what it showed)

  noteScreen(atMs: number, notice: string | null): void {
    const last = this.#screen.at(-1);
    if ((last?.notice ?? null) !== notice) this.#screen.push({ atMs, notice });
  }
}
