// The carousel: where it physically stands and where its index sensor says it stands, and the plan of a rotation.

import { rotationMs, type HardwareProfile } from '../../hardware/src/profile.js';

export type RotationPlan = {
  durationMs: number;
  /** Slot the index sensor reports at the end. */
  indexSlot: number;
  /** Slot physically at the dispensing position at the end (differs after a slip). */
  physicalSlot: number;
  jammed: boolean;
};

export class Carousel {
  physicalSlot = 0;
  indexSlot = 0;

  constructor(private readonly profile: HardwareProfile) {}

  /**
   * Plans a turn to `to`. A jam stops it halfway with the index unchanged; a slip
   * (+1 or −1) leaves it one slot off while the index reports `to`. Every turn
   * homes on the index first, so a previous slip does not carry over.
   */
  plan(to: number, opts: { jam: boolean; slip: 0 | 1 | -1 }): RotationPlan {
    const moveMs = rotationMs(this.profile, this.indexSlot, to);
    if (opts.jam) return { durationMs: moveMs / 2 + this.profile.labelReadMs, indexSlot: this.indexSlot, physicalSlot: this.physicalSlot, jammed: true };
    const n = this.profile.slotCount;
    return { durationMs: moveMs + this.profile.labelReadMs, indexSlot: to, physicalSlot: (to + opts.slip + n) % n, jammed: false };
  }

  apply(plan: RotationPlan): void {
    this.indexSlot = plan.indexSlot;
    this.physicalSlot = plan.physicalSlot;
  }

  /** Plain move without a label read (a RELEASE or SHAKE away from the current slot). */
  moveMs(to: number): number {
    return this.indexSlot === to ? 0 : rotationMs(this.profile, this.indexSlot, to);
  }

  moveTo(to: number): void {
    this.indexSlot = to;
    this.physicalSlot = to;
  }
}
