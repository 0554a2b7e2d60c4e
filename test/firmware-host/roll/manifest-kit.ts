// Builds roll manifests for tests from UTC instants (the manifest's zone is UTC, so local date and time are the ISO parts).

export type KitPouch = { intakeAtMs: number; pills: number };

export function manifestFor(rollId: string, pouches: readonly KitPouch[], citizenId = 'C1'): string {
  const date = (ms: number) => new Date(ms).toISOString().slice(0, 10);
  const time = (ms: number) => new Date(ms).toISOString().slice(11, 16);
  const times = pouches.map((p) => p.intakeAtMs);
  return JSON.stringify(
    {
      format: 'dosis-roll/1',
      rollId,
      citizenId,
      printedLabel: { name: 'Test Person', birthDate: '1940-01-01' },
      timeZone: 'UTC',
      period: { from: date(Math.min(...times)), to: date(Math.max(...times)) },
      pouches: pouches.map((p, i) => ({
        position: i + 1,
        intakeDate: date(p.intakeAtMs),
        intakeTime: time(p.intakeAtMs),
        drugs: [{ name: 'Testol', strength: '1 mg', count: p.pills }],
        pillCount: p.pills,
      })),
    },
    null,
    2,
  );
}

/** `n` pouches every `everyH` hours from `startMs` (rounded to the minute). */
export function series(startMs: number, n: number, everyH = 6, pills = 3): KitPouch[] {
  const start = Math.ceil(startMs / 60_000) * 60_000;
  return Array.from({ length: n }, (_, i) => ({ intakeAtMs: start + i * everyH * 3_600_000, pills }));
}
