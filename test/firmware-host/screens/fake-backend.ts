// A scripted ScreenBackend for the screens' tests: views are set by the test, every call is recorded.

import type { CitizenView, PharmacyView, ReturnedPouch, RollProblem, ScreenBackend } from '../../../firmware-host/src/screens/backend.js';

export const T0 = Date.UTC(2026, 0, 6, 6, 50); // 07:50 in Copenhagen (CET)

export function idleView(nowMs = T0): CitizenView {
  return {
    nowMs,
    timeZone: 'Europe/Copenhagen',
    phase: 'idle',
    nextDose: { doseId: 'R1-001', intakeAtMs: Date.UTC(2026, 0, 6, 7, 0) },
    currentDose: null,
    dispensing: null,
    error: null,
    lowSupply: null,
    reminder: false,
  };
}

export class FakeScreenBackend implements ScreenBackend {
  view: CitizenView = idleView();
  pharmacy: PharmacyView = {
    roll: { rollId: 'R1', pouchesLeft: 12, nextPouch: { position: 3, intakeAtMs: Date.UTC(2026, 0, 6, 7, 0) }, daysLeft: 4 },
    events: [{ atMs: T0 - 60_000, type: 'dose.taken', doseId: 'R1-002' }],
    health: { link: 'up', firmware: 'sim-1.0.0', bootId: 'b00t', lastErrors: [] },
  };
  /** Extra problems validateRoll reports besides "not JSON". */
  problems: RollProblem[] = [];
  returned: ReturnedPouch[] = [
    { position: 3, intakeAtMs: Date.UTC(2026, 0, 6, 7, 0), pillCount: 4 },
    { position: 4, intakeAtMs: Date.UTC(2026, 0, 6, 11, 0), pillCount: 2 },
  ];
  presses = 0;
  /** Runs on each press, after it is counted: a test scripts the controller's answer here. */
  onPress: (() => void) | null = null;
  validateCalls: string[] = [];
  loadCalls: { manifestText: string; staffId: string }[] = [];
  unloadCalls: string[] = [];
  readonly #listeners = new Set<(v: CitizenView) => void>();

  get listeners(): number {
    return this.#listeners.size;
  }

  /** Moves the citizen's view on and tells every subscriber. */
  set(patch: Partial<CitizenView>): CitizenView {
    this.view = { ...this.view, ...patch };
    for (const l of [...this.#listeners]) l(this.view);
    return this.view;
  }

  citizenView(): CitizenView {
    return this.view;
  }

  onCitizenView(listener: (v: CitizenView) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  pressButton(): void {
    this.presses += 1;
    this.onPress?.();
  }

  pharmacyView(): PharmacyView {
    return this.pharmacy;
  }

  #check(text: string): { problems: RollProblem[]; pouches: number } {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return { problems: [{ path: '', severity: 'error', code: 'not_json', message: 'the file is not JSON' }], pouches: 0 };
    }
    const pouches = (parsed as { pouches?: unknown[] }).pouches;
    return { problems: [...this.problems], pouches: Array.isArray(pouches) ? pouches.length : 0 };
  }

  validateRoll(manifestText: string): { ok: boolean; problems: RollProblem[]; pouches: number } {
    this.validateCalls.push(manifestText);
    const r = this.#check(manifestText);
    return { ok: !r.problems.some((p) => p.severity === 'error'), ...r };
  }

  loadRoll(manifestText: string, staffId: string): { ok: boolean; problems: RollProblem[] } {
    this.loadCalls.push({ manifestText, staffId });
    const r = this.#check(manifestText);
    const ok = !r.problems.some((p) => p.severity === 'error');
    if (ok) {
      const rollId = (JSON.parse(manifestText) as { rollId?: string }).rollId ?? 'R?';
      this.pharmacy = { ...this.pharmacy, roll: { rollId, pouchesLeft: r.pouches, nextPouch: null, daysLeft: Math.floor(r.pouches / 4) } };
    }
    return { ok, problems: r.problems };
  }

  unloadRoll(staffId: string): { ok: boolean; returned: ReturnedPouch[] } {
    this.unloadCalls.push(staffId);
    if (!this.pharmacy.roll) return { ok: false, returned: [] };
    this.pharmacy = { ...this.pharmacy, roll: null };
    return { ok: true, returned: this.returned };
  }
}
