// Ground truth of what the simulated robot physically did, whatever its sensors said: the soak's referee.

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

export class Ledger {
  readonly #entries: LedgerEntry[] = [];
  readonly #executions = new Map<string, number>();
  readonly #cuts = new Map<number, number>();
  readonly #takes: { atMs: number; pills: number }[] = [];

  /** `cupPills` reads the physical cup, which the ledger does not own. */
  constructor(private readonly cupPills: () => number = () => 0) {}

  get entries(): readonly LedgerEntry[] {
    return this.#entries;
  }

  get takes(): readonly { atMs: number; pills: number }[] {
    return this.#takes;
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
  }

  // ---- written by the simulator only

  noteExecution(commandId: string): void {
    this.#executions.set(commandId, this.executions(commandId) + 1);
  }

  noteCut(slot: number): void {
    this.#cuts.set(slot, this.cutCount(slot) + 1);
  }

  /** Adds an entry; the simulator fills in pulsesReported when (if) the MCU reports. */
  addEntry(entry: LedgerEntry): LedgerEntry {
    this.#entries.push(entry);
    return entry;
  }

  noteTake(atMs: number, pills: number): void {
    this.#takes.push({ atMs, pills });
  }
}
