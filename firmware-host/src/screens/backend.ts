// What the citizen's and the pharmacy's screens need from the controller; the lead implements it over the real one.
//
// The screens never reach into the controller, the store or the roll module
// directly: everything they show or do goes through this interface, so the
// pages can be tested against a scripted fake and the controller can change
// behind it. Views are plain JSON (they go out as-is over HTTP and SSE) and
// carry pseudonymous ids only: no names, no drug names.

export type CitizenPhase = 'idle' | 'early' | 'due' | 'overdue' | 'dispensing' | 'present' | 'error' | 'offline';

/** Something about the robot itself (not about a dose) both screens show, in both languages. */
export type ScreenNotice = { code: 'no_alarm_centre' | 'device_fault'; text: { da: string; en: string } };

export type CitizenView = {
  nowMs: number;
  /** IANA zone the robot's wall-clock times are in (Europe/Copenhagen by default); the page formats every time in it. */
  timeZone: string;
  phase: CitizenPhase;
  nextDose: { doseId: string; intakeAtMs: number } | null;
  currentDose: { doseId: string; intakeAtMs: number; pillCount: number } | null;
  dispensing: { step: 'rotating' | 'checking' | 'releasing' | 'counting' | 'retrying' } | null;
  /** A yellow dose: reason code; the page maps it to plain words. `staffTold`: the alarm centre was told of it. */
  error: { reason: string; staffTold?: boolean } | null;
  /** How to take the dose in the cup or due now, from the manifest, in the languages it gives. */
  instructions?: { da?: string | undefined; en?: string | undefined } | null;
  /** The robot is paused (a hospital stay): no dose until the expected end. */
  paused?: { untilMs: number } | null;
  lowSupply: { daysLeft: number } | null;
  /** Play the reminder sound. */
  reminder: boolean;
  notices?: ScreenNotice[];
};

export type RollProblem = { path: string; severity: string; code: string; message: string };

/** A pouch on a receipt; `label` when it is not of the receipt's roll (the old roll's pouches on a replacement). */
export type ReturnedPouch = { position: number; intakeAtMs: number; pillCount: number; label?: string };

/** A roll as the staff confirm it: whose it is and for when (the printed label, shown to staff and never logged). */
export type RollSummary = { rollId: string; name: string; birthDate: string; from: string; to: string; pouches: number };

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
  notices?: ScreenNotice[];
  /** The citizen the robot is commissioned for, or null. */
  commissioned?: { citizenId: string; atMs: number } | null;
  pause?: { fromMs: number; untilMs: number; reason: string } | null;
  /** The doses still to come, for travel and withdrawal one by one. */
  upcoming?: { doseId: string; label: string; intakeAtMs: number; pillCount: number }[];
};

/** The outcome of a care action: the doses it moved, for the receipt. */
export type CareResult = { ok: true; rollId: string | null; doses: ReturnedPouch[]; pause?: { fromMs: number; untilMs: number } } | { ok: false; code: string; message: string };

/** Commissioning and the staff's care actions: pause, travel, withdrawal. Each is one store transaction. */
export interface CareBackend {
  isAdmin(staffId: string): boolean;
  commission(citizenId: string, staffId: string): CareResult;
  decommission(staffId: string): CareResult;
  pause(o: { fromMs: number; untilMs: number; reason: string }, staffId: string): CareResult;
  endPause(staffId: string): CareResult;
  travel(count: number, staffId: string): CareResult;
  withdraw(which: { fromMs: number } | { doseIds: string[] }, staffId: string): CareResult;
}

export interface ScreenBackend {
  citizenView(): CitizenView;
  /** Calls `listener` with every new view; returns the unsubscribe function. */
  onCitizenView(listener: (v: CitizenView) => void): () => void;
  /** Same as the physical button. */
  pressButton(): void;
  pharmacyView(): PharmacyView;
  validateRoll(manifestText: string, opts?: { returnPending?: boolean }): { ok: boolean; problems: RollProblem[]; pouches: number; roll?: RollSummary | undefined; pending?: number };
  loadRoll(
    manifestText: string,
    staffId: string,
    opts?: { returnPending?: boolean },
  ): { ok: boolean; problems: RollProblem[]; rollId?: string; loaded?: ReturnedPouch[]; returned?: ReturnedPouch[]; replaced?: string | null };
  unloadRoll(staffId: string): { ok: boolean; returned: ReturnedPouch[] };
  /** Present on the robot itself (not on every test double). */
  care?: CareBackend;
}
