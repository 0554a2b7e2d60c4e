// The pouch label: what the pharmacy prints on a pouch and the robot's label reader reads at the dispensing position.

/** `<rollId>-<position, three digits>`: the label of the pouch at `position` (1-based) of roll `rollId`. */
export function pouchLabel(rollId: string, position: number): string {
  return `${rollId}-${String(position).padStart(3, '0')}`;
}
