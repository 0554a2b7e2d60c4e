// The screens' backend over the real controller and store: citizen views from the controller's status, the pharmacy's loading through the roll validator.
//
// The citizen's view is recomputed on every controller status, on every
// device event (a lifted cup ends a yellow dose's error without the
// controller saying so) and on a minute tick (the clock on the screen, days
// of supply); listeners only hear about a view that changed. A roll is loaded
// only after validateManifest says so, against this robot's citizen, slot
// count and the roll now loaded, and the store swaps the rolls in one
// transaction, so a refused or failed load leaves the old roll as it was.

import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../../../protocol/src/clock.js';
import type { HardwareProfile } from '../../../hardware/src/profile.js';
import type { Controller, ControllerStatus } from '../controller.js';
import type { DeviceLink } from '../link/link.js';
import type { ScheduledPouch } from '../roll/types.js';
import { validateManifest, type ValidateContext } from '../roll/validate.js';
import { loadedRollOf } from '../roll/continuity.js';
import { DEFAULT_TIME_ZONE } from '../roll/manifest-schema.js';
import type { DoseRow, Store } from '../store/store.js';
import { DEFAULT_LOW_SUPPLY_DAYS, supplyState } from '../supply.js';
import type { CareBackend, CareResult, CitizenPhase, CitizenView, PharmacyView, ReturnedPouch, RollProblem, RollSummary, ScreenBackend } from './backend.js';

export type ControllerBackendOptions = {
  controller: Controller;
  store: Store;
  clock: Clock;
  profile: HardwareProfile;
  link: DeviceLink;
  logger: Logger;
  /** The robot's zone; Europe/Copenhagen by default. */
  timeZone?: string;
  /**
   * The citizen the robot is set up for (the host's configuration): commissions a robot not yet commissioned.
   * A robot commissioned already keeps its binding; without either, every roll is refused.
   */
  citizenId?: string;
  /** Fewer days of pouches than this shows "running low"; 3 by default. */
  lowSupplyDays?: number;
  /** Called after a roll was loaded (the demo fills the simulator's carousel with its pouches here). */
  onLoaded?: (roll: { rollId: string; citizenId: string; pouches: ScheduledPouch[] }) => void;
};

export const MINUTE_MS = 60_000;
const EVENTS_SHOWN = 50;
/** Event-log types the pharmacy's health panel lists as recent errors. */
const ERROR_EVENTS = new Set(['dose_failed', 'mcu_latched', 'mcu_reset_seen', 'dispense_abandoned', 'roll_load_refused', 'roll_unload_refused']);
const NOTICE_ERRORS = new Set(['cup_missing', 'cup_not_empty', 'link_lost']);

export function createControllerBackend(opts: ControllerBackendOptions): ScreenBackend {
  const { controller, store, clock, profile, link, logger } = opts;
  const timeZone = opts.timeZone ?? DEFAULT_TIME_ZONE;
  const lowDays = opts.lowSupplyDays ?? DEFAULT_LOW_SUPPLY_DAYS;
  const listeners = new Set<(v: CitizenView) => void>();
  const bound = store.commissioning();
  if (!bound && opts.citizenId !== undefined) store.commission(opts.citizenId, 'setup');
  else if (bound && opts.citizenId !== undefined && bound.citizenId !== opts.citizenId) {
    logger.warn('the configured citizen differs from the commissioned one; the commissioning holds');
  }
  let lastKey = '';
  let tick: TimerHandle | undefined;

  const errorOf = (s: ControllerStatus): { reason: string; staffTold: boolean } | null => {
    // A notice (no cup, cup not empty, no link) tells no one: the citizen can put it right and press again.
    if (s.notice && NOTICE_ERRORS.has(s.notice)) return { reason: s.notice, staffTold: false };
    const o = s.lastOutcome;
    if (!o || o.cls !== 'yellow' || s.phase === 'dispensing' || s.phase === 'presented') return null;
    // A failed dose is in the alarm outbox in the same transaction that ended it.
    const told = store.dose(o.doseId)?.state === 'failed';
    // Pills may be in the cup: the error stays until the cup has been emptied, whatever the next dose does.
    const releasedPills = store.intents(o.doseId).some((i) => i.name !== 'ROTATE');
    if (releasedPills) return store.cupDose() === o.doseId ? { reason: o.reason ?? 'unknown', staffTold: told } : null;
    // Nothing left the pouch: shown until the next dose's window opens.
    return s.phase === 'idle' || s.phase === 'waiting' || s.phase === 'starting' ? { reason: o.reason ?? 'unknown', staffTold: told } : null;
  };

  const citizenView = (): CitizenView => {
    const now = clock.now();
    const s = controller.status();
    const error = errorOf(s);
    let phase: CitizenPhase;
    if (s.link !== 'ready' && s.phase !== 'presented') phase = 'offline';
    else if (error) phase = 'error';
    else if (s.phase === 'starting') phase = 'offline';
    else if (s.phase === 'presented') phase = 'present';
    else if (s.phase === 'waiting') phase = 'idle';
    else phase = s.phase;
    const open = phase === 'early' || phase === 'due' || phase === 'overdue' || phase === 'dispensing' || phase === 'present';
    // While the machine waits for a dose's window, that dose is the next one for the citizen.
    const nextDose = s.phase === 'waiting' && s.current ? { doseId: s.current.doseId, intakeAtMs: s.current.intakeAtMs } : s.next;
    const supply = supplyState(store, now);
    const pause = store.activePause();
    const paused = pause && pause.fromMs <= now && !open ? { untilMs: pause.untilMs } : null;
    const doseId = open && s.current ? s.current.doseId : null;
    const row = doseId ? store.dose(doseId) : undefined;
    const instructions = row?.instructions ? (JSON.parse(row.instructions) as { da?: string; en?: string }) : null;
    return {
      nowMs: now,
      timeZone,
      phase,
      instructions,
      paused,
      nextDose: nextDose ?? null,
      currentDose: open && s.current ? { ...s.current } : null,
      dispensing: phase === 'dispensing' ? { step: s.step ?? 'checking' } : null,
      error,
      lowSupply: supply && supply.daysLeft < lowDays ? { daysLeft: Math.floor(supply.daysLeft) } : null,
      reminder: phase === 'due' || phase === 'overdue',
    };
  };

  const publish = (): void => {
    if (listeners.size === 0) return;
    const v = citizenView();
    // nowMs changes every call; only the minute tick should push a new clock reading.
    const key = JSON.stringify({ ...v, nowMs: Math.floor(v.nowMs / MINUTE_MS) });
    if (key === lastKey) return;
    lastKey = key;
    for (const l of [...listeners]) {
      try {
        l(v);
      } catch (err) {
        logger.error({ err }, 'citizen view listener failed');
      }
    }
  };

  const onStatus = (): void => publish();
  const onDeviceEvent = (): void => publish();
  const armTick = (): void => {
    const now = clock.now();
    tick = clock.setTimeout(() => {
      publish();
      armTick();
    }, MINUTE_MS - (now % MINUTE_MS) || MINUTE_MS);
  };

  const NOT_COMMISSIONED: RollProblem = {
    path: '/', severity: 'error', code: 'DOSIS_ERR_NOT_COMMISSIONED', message: 'the robot is not commissioned for a citizen: set it up first',
  };

  /** Checked against the commissioned citizen, whatever is or is not loaded; undefined when the robot is not commissioned. */
  const validate = (manifestText: string, returnPending: boolean) => {
    const citizenId = store.commissioning()?.citizenId;
    if (citizenId === undefined) return undefined;
    const nowMs = clock.now();
    const ctx: ValidateContext = { slotCount: profile.slotCount, nowMs, loaded: loadedRollOf(store, nowMs), citizenId, returnPending };
    return validateManifest(manifestText, ctx);
  };

  const summaryOf = (r: ReturnType<typeof validateManifest>): RollSummary | undefined =>
    r.manifest && {
      rollId: r.manifest.rollId, name: r.manifest.printedLabel.name, birthDate: r.manifest.printedLabel.birthDate,
      from: r.manifest.period.from, to: r.manifest.period.to, pouches: r.pouches.length,
    };

  const toProblems = (list: readonly { path: string; severity: string; code: string; message: string }[]): RollProblem[] =>
    list.map((p) => ({ path: p.path, severity: p.severity, code: p.code, message: p.message }));

  const toReturned = (rows: readonly { position: number; intakeAtMs: number; pillCount: number; label: string }[]): ReturnedPouch[] =>
    rows.map((d) => ({ position: d.position, intakeAtMs: d.intakeAtMs, pillCount: d.pillCount, label: d.label }));

  const codeOf = (err: unknown): string => (typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : 'DOSIS_ERR_INTERNAL');

  return {
    citizenView,

    onCitizenView(listener) {
      if (listeners.size === 0) {
        controller.on('status', onStatus);
        controller.on('outcome', onStatus);
        link.on('event', onDeviceEvent);
        lastKey = '';
        armTick();
      }
      listeners.add(listener);
      return () => {
        if (!listeners.delete(listener) || listeners.size > 0) return;
        controller.off('status', onStatus);
        controller.off('outcome', onStatus);
        link.off('event', onDeviceEvent);
        clock.clearTimeout(tick);
        tick = undefined;
      };
    },

    pressButton() {
      store.log('screen_button', controller.status().current?.doseId ?? null, null);
      controller.pressButton();
      publish();
    },

    pharmacyView(): PharmacyView {
      const now = clock.now();
      const active = store.activeRoll();
      const left = active ? store.remainingPouches() : [];
      const supply = supplyState(store, now);
      const events = store.recentEvents(EVENTS_SHOWN).map((e) => ({
        atMs: e.atMs,
        type: e.type,
        ...(e.doseId !== null ? { doseId: e.doseId } : {}),
        ...(e.detail !== null ? { detail: JSON.stringify(e.detail) } : {}),
      }));
      const lastErrors = events
        .filter((e) => ERROR_EVENTS.has(e.type))
        .slice(0, 5)
        .map((e) => `${new Date(e.atMs).toISOString()} ${e.type}${e.doseId ? ` ${e.doseId}` : ''}`);
      return {
        roll: active
          ? {
              rollId: active.rollId,
              pouchesLeft: left.length,
              nextPouch: left[0] ? { position: left[0].position, intakeAtMs: left[0].intakeAtMs } : null,
              daysLeft: Math.floor(supply?.daysLeft ?? 0),
            }
          : null,
        events,
        health: { link: link.state, firmware: link.hello?.fw ?? null, bootId: link.hello?.boot ?? null, lastErrors },
        commissioned: (() => {
          const c = store.commissioning();
          return c ? { citizenId: c.citizenId, atMs: c.atMs } : null;
        })(),
        pause: (() => {
          const p = store.activePause();
          return p ? { fromMs: p.fromMs, untilMs: p.untilMs, reason: p.reason } : null;
        })(),
        upcoming: left.slice(0, 60).map((d) => ({ doseId: d.doseId, label: d.label, intakeAtMs: d.intakeAtMs, pillCount: d.pillCount })),
      };
    },

    validateRoll(manifestText, o = {}) {
      const r = validate(manifestText, o.returnPending === true);
      if (!r) return { ok: false, problems: [NOT_COMMISSIONED], pouches: 0 };
      store.log('roll_validated', null, { ok: r.ok, problems: r.problems.length, pouches: r.pouches.length, rollId: r.manifest?.rollId ?? null });
      // What would come back: the pouches not yet cut, suspended ones included.
      const active = store.activeRoll()?.rollId;
      const pending = active ? store.allDoses().filter((d) => d.rollId === active && (d.state === 'scheduled' || d.state === 'suspended')).length : 0;
      return { ok: r.ok, problems: toProblems(r.problems), pouches: r.pouches.length, roll: summaryOf(r), pending };
    },

    loadRoll(manifestText, staffId, o = {}) {
      const r = validate(manifestText, o.returnPending === true);
      if (!r) {
        store.log('roll_load_refused', null, { staffId, code: NOT_COMMISSIONED.code });
        return { ok: false, problems: [NOT_COMMISSIONED] };
      }
      if (!r.ok || !r.manifest) {
        const errors = r.problems.filter((p) => p.severity === 'error').map((p) => p.code);
        store.log('roll_load_refused', null, { staffId, problems: r.problems.length, codes: [...new Set(errors)].slice(0, 10) });
        logger.warn({ staffId, problems: r.problems.length }, 'roll load refused: invalid manifest');
        return { ok: false, problems: toProblems(r.problems) };
      }
      const roll = { rollId: r.manifest.rollId, citizenId: r.manifest.citizenId, pouches: r.pouches };
      const replaced = store.activeRoll()?.rollId ?? null;
      let returned: DoseRow[];
      try {
        returned = controller.loadSchedule(roll, staffId);
      } catch (err) {
        const code = codeOf(err);
        store.log('roll_load_refused', null, { staffId, rollId: roll.rollId, code });
        logger.warn({ staffId, rollId: roll.rollId, code }, 'roll load refused by the store');
        return { ok: false, problems: [...toProblems(r.problems), { path: '/', severity: 'error', code, message: (err as Error).message }] };
      }
      logger.info({ staffId, rollId: roll.rollId, pouches: roll.pouches.length, returned: returned.length }, 'roll loaded');
      try {
        opts.onLoaded?.(roll);
      } catch (err) {
        logger.error({ err }, 'onLoaded hook failed');
      }
      publish();
      return { ok: true, problems: toProblems(r.problems), rollId: roll.rollId, loaded: toReturned(roll.pouches), returned: toReturned(returned), replaced };
    },

    unloadRoll(staffId) {
      const rollId = store.activeRoll()?.rollId ?? null;
      let rows: DoseRow[];
      try {
        rows = controller.unloadSchedule(staffId);
      } catch (err) {
        const code = codeOf(err);
        store.log('roll_unload_refused', null, { staffId, rollId, code });
        logger.warn({ staffId, rollId, code }, 'roll unload refused');
        return { ok: false, returned: [] };
      }
      logger.info({ staffId, rollId, returned: rows.length }, 'roll unloaded');
      publish();
      return { ok: true, returned: toReturned(rows) };
    },

    care: careBackend(),
  };

  function careBackend(): CareBackend {
    /** Runs one store action; the controller starts over from the changed schedule. */
    const act = (what: string, staffId: string, body: () => { rows: readonly DoseRow[]; pause?: { fromMs: number; untilMs: number } }): CareResult => {
      const rollId = store.activeRoll()?.rollId ?? null;
      let out;
      try {
        out = body();
      } catch (err) {
        const code = codeOf(err);
        store.log('care_refused', null, { staffId, what, code });
        logger.warn({ staffId, what, code }, 'care action refused');
        return { ok: false, code, message: (err as Error).message };
      }
      controller.scheduleChanged();
      logger.info({ staffId, what, doses: out.rows.length }, 'care action');
      publish();
      return { ok: true, rollId, doses: toReturned(out.rows), ...(out.pause ? { pause: out.pause } : {}) };
    };
    return {
      isAdmin: (staffId) => store.isAdmin(staffId),
      commission: (citizenId, staffId) => act('commission', staffId, () => (store.commission(citizenId, staffId), { rows: [] })),
      decommission: (staffId) => act('decommission', staffId, () => (store.decommission(staffId), { rows: [] })),
      pause: (o, staffId) =>
        act('pause', staffId, () => {
          const r = store.pause({ ...o, staffId });
          return { rows: r.suspended, pause: { fromMs: o.fromMs, untilMs: o.untilMs } };
        }),
      endPause: (staffId) =>
        act('resume', staffId, () => {
          const r = store.endPause(staffId);
          return { rows: r.resumed, pause: { fromMs: r.pause.fromMs, untilMs: r.pause.untilMs } };
        }),
      travel: (count, staffId) => act('travel', staffId, () => ({ rows: store.releaseForTravel(count, staffId) })),
      withdraw: (which, staffId) => act('withdraw', staffId, () => ({ rows: store.withdraw(which, staffId) })),
    };
  }
}
