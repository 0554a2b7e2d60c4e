// The label reader at the dispensing position: reads the pouch physically there, unless the read fails.

/** The label of the pouch physically at the position, or undefined when there is none or it cannot be read. */
export function readLabel(pouch: { label: string } | undefined, unreadable: boolean): string | undefined {
  if (!pouch || unreadable) return undefined;
  return pouch.label;
}
