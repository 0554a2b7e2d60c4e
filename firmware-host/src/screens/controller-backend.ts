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
import { validateManifest, type LoadedRoll, type ValidateContext } from '../roll/validate.js';
import { DEFAULT_TIME_ZONE } from '../roll/manifest-schema.js';
import type { DoseRow, Store } from '../store/store.js';
import { DEFAULT_LOW_SUPPLY_DAYS, supplyState } from '../supply.js';
import type { CitizenPhase, CitizenView, PharmacyView, ReturnedPouch, RollProblem, ScreenBackend } from './backend.js';

export type ControllerBackendOptions = {
  controller: Controller;
  store: Store;
  clock: Clock;
  profile: HardwareProfile;
  link: DeviceLink;
  logger: Logger;
  /** The robot's zone; Europe/Copenhagen by default. */
  timeZone?: string;
  /** The citizen this robot serves; when absent, the active roll's citizen (none: unchecked). */
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
  let lastKey = '';
  let tick: TimerHandle | undefined;

  const errorOf = (s: ControllerStatus): { reason: string } | null => {
    if (s.notice && NOTICE_ERRORS.has(s.notice)) return { reason: s.notice };
    const o = s.lastOutcome;
    if (!o || o.cls !== 'yellow' || s.phase === 'dispensing' || s.phase === 'presented') return null;
    // Pills may be in the cup: the error stays until the cup has been emptied, whatever the next dose does.
    const releasedPills = store.intents(o.doseId).some((i) => i.name !== 'ROTATE');
    if (releasedPills) return store.cupDose() === o.doseId ? { reason: o.reason ?? 'unknown' } : null;
    // Nothing left the pouch: shown until the next dose's window opens.
    return s.phase === 'idle' || s.phase === 'waiting' || s.phase === 'starting' ? { reason: o.reason ?? 'unknown' } : null;
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
    return {
      nowMs: now,
      timeZone,
      phase,
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

  const loadedRoll = (): LoadedRoll | undefined => {
    const active = store.activeRoll();
    if (!active) return undefined;
    const doses = store.allDoses().filter((d) => d.rollId === active.rollId);
    if (doses.length === 0) return undefined;
    return { rollId: active.rollId, firstIntakeAtMs: doses[0]!.intakeAtMs, lastIntakeAtMs: doses[doses.length - 1]!.intakeAtMs };
  };

  const validate = (manifestText: string) => {
    const citizenId = opts.citizenId ?? store.activeRoll()?.citizenId;
    const ctx: ValidateContext = { slotCount: profile.slotCount, nowMs: clock.now(), loaded: loadedRoll(), ...(citizenId !== undefined ? { citizenId } : {}) };
    return validateManifest(manifestText, ctx);
  };

  const toProblems = (list: readonly { path: string; severity: string; code: string; message: string }[]): RollProblem[] =>
    list.map((p) => ({ path: p.path, severity: p.severity, code: p.code, message: p.message }));

  const toReturned = (rows: readonly DoseRow[]): ReturnedPouch[] => rows.map((d) => ({ position: d.position, intakeAtMs: d.intakeAtMs, pillCount: d.pillCount }));

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
      };
    },

    validateRoll(manifestText) {
      const r = validate(manifestText);
      store.log('roll_validated', null, { ok: r.ok, problems: r.problems.length, pouches: r.pouches.length, rollId: r.manifest?.rollId ?? null });
      return { ok: r.ok, problems: toProblems(r.problems), pouches: r.pouches.length };
    },

    loadRoll(manifestText, staffId) {
      const r = validate(manifestText);
      if (!r.ok || !r.manifest) {
        const errors = r.problems.filter((p) => p.severity === 'error').map((p) => p.code);
        store.log('roll_load_refused', null, { staffId, problems: r.problems.length, codes: [...new Set(errors)].slice(0, 10) });
        logger.warn({ staffId, problems: r.problems.length }, 'roll load refused: invalid manifest');
        return { ok: false, problems: toProblems(r.problems) };
      }
      const roll = { rollId: r.manifest.rollId, citizenId: r.manifest.citizenId, pouches: r.pouches };
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
      return { ok: true, problems: toProblems(r.problems) };
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
  };
}
