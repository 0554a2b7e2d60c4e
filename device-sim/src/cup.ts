// The cup under the dispenser: whether it is in place and how many pills lie in it (physical, survives an MCU reset).

export class Cup {
  /** The citizen starts with the cup in place, empty. */
  present = true;
  pills = 0;

  /** Pills land in the cup only when it is there; otherwise they are lost on the tray. */
  receive(pills: number): void {
    if (this.present) this.pills += pills;
  }

  /** The citizen takes the cup away; returns the pills it held. */
  take(): number {
    const n = this.pills;
    this.present = false;
    this.pills = 0;
    return n;
  }

  place(): void {
    this.present = true;
  }
}
