// What the citizen's and the pharmacy's screens need from the controller; the lead implements it over the real one.
//
// The screens never reach into the controller, the store or the roll module
// directly: everything they show or do goes through this interface, so the
// pages can be tested against a scripted fake and the controller can change
// behind it. Views are plain JSON (they go out as-is over HTTP and SSE) and
// carry pseudonymous ids only: no names, no drug names.

export type CitizenPhase = 'idle' | 'early' | 'due' | 'overdue' | 'dispensing' | 'present' | 'error' | 'offline';

export type CitizenView = {
  nowMs: number;
  /** IANA zone the robot's wall-clock times are in (Europe/Copenhagen by default); the page formats every time in it. */
  timeZone: string;
  phase: CitizenPhase;
  nextDose: { doseId: string; intakeAtMs: number } | null;
  currentDose: { doseId: string; intakeAtMs: number; pillCount: number } | null;
  dispensing: { step: 'rotating' | 'checking' | 'releasing' | 'counting' | 'retrying' } | null;
  /** A yellow dose: reason code; the page maps it to plain words. */
  error: { reason: string } | null;
  lowSupply: { daysLeft: number } | null;
  /** Play the reminder sound. */
  reminder: boolean;
};

export type RollProblem = { path: string; severity: string; code: string; message: string };

/** A pouch on a receipt; `label` when it is not of the receipt's roll (the old roll's pouches on a replacement). */
export type ReturnedPouch = { position: number; intakeAtMs: number; pillCount: number; label?: string };

export type PharmacyView = {
  roll: {
    rollId: string;
    pouchesLeft: number;
    nextPouch: { position: number; intakeAtMs: number } | null;
    daysLeft: number;
  } | null;
  /** The last 50 events, newest first. */
  events: { atMs: number; type: string; doseId?: string; detail?: string }[];
  health: { link: string; firmware: string | null; bootId: string | null; lastErrors: string[] };
};

export interface ScreenBackend {
  citizenView(): CitizenView;
  /** Calls `listener` with every new view; returns the unsubscribe function. */
  onCitizenView(listener: (v: CitizenView) => void): () => void;
  /** Same as the physical button. */
  pressButton(): void;
  pharmacyView(): PharmacyView;
  validateRoll(manifestText: string): { ok: boolean; problems: RollProblem[]; pouches: number };
  loadRoll(manifestText: string, staffId: string): { ok: boolean; problems: RollProblem[] };
  unloadRoll(staffId: string): { ok: boolean; returned: ReturnedPouch[] };
}
