// The pouches on the roll and the cutter that opens them: decides which pills fall and which stay stuck.

import type { Random } from './random.js';

export type Pouch = {
  slot: number;
  label: string;
  /** Pills still inside, stuck ones included. */
  pills: number;
  /** Stuck pills a shake can free. */
  stuck: number;
  /** Stuck pills nothing frees. */
  stuckForGood: number;
  cut: boolean;
};

export function makePouch(slot: number, label: string, pills: number): Pouch {
  return { slot, label, pills, stuck: 0, stuckForGood: 0, cut: false };
}

/** Cuts the pouch open; returns how many pills fall now. */
export function cutPouch(
  pouch: Pouch,
  rng: Random,
  rates: { pillStuck: number; pillsStuckForGood: number },
  fired: (name: 'pillStuck' | 'pillsStuckForGood') => void = () => undefined,
): number {
  pouch.cut = true;
  if (pouch.pills - pouch.stuck - pouch.stuckForGood > 0 && rng.chance(rates.pillsStuckForGood)) {
    pouch.stuckForGood += 1;
    fired('pillsStuckForGood');
  }
  if (pouch.pills - pouch.stuck - pouch.stuckForGood > 0 && rng.chance(rates.pillStuck)) {
    pouch.stuck += 1;
    fired('pillStuck');
  }
  const falling = pouch.pills - pouch.stuck - pouch.stuckForGood;
  pouch.pills -= falling;
  return falling;
}

/** Shakes an open pouch: the freeable stuck pills fall. */
export function shakePouch(pouch: Pouch): number {
  const falling = pouch.stuck;
  pouch.stuck = 0;
  pouch.pills -= falling;
  return falling;
}
