// A roll manifest for given intake instants, written the way the pharmacy's packing system would: for demos and set-up checks.

import { MANIFEST_FORMAT } from './manifest-schema.js';

export type ExamplePouch = { intakeAtMs: number; pills: number };

/** Local date and time (`YYYY-MM-DD`, `HH:MM`) of an instant in a zone. */
function local(ms: number, timeZone: string): { date: string; time: string } {
  const p: Record<string, string> = {};
  const f = new Intl.DateTimeFormat('en-GB', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' });
  for (const x of f.formatToParts(new Date(ms))) p[x.type] = x.value;
  return { date: `${p.year}-${p.month}-${p.day}`, time: `${p.hour}:${p.minute}` };
}

/** The manifest text of a roll with one pouch per instant, in order; a made-up printed name, never a real person's. */
export function exampleManifest(o: { rollId: string; citizenId: string; timeZone: string; pouches: readonly ExamplePouch[] }): string {
  const pouches = o.pouches.map((p, i) => {
    const at = local(p.intakeAtMs, o.timeZone);
    return {
      position: i + 1,
      intakeDate: at.date,
      intakeTime: at.time,
      instructions: { da: 'Tages med et glas vand', en: 'Take with a glass of water' },
      drugs: [{ name: 'Eksempelol', strength: '10 mg', count: p.pills }],
      pillCount: p.pills,
    };
  });
  const dates = pouches.map((p) => p.intakeDate);
  return `${JSON.stringify(
    {
      format: MANIFEST_FORMAT,
      rollId: o.rollId,
      citizenId: o.citizenId,
      printedLabel: { name: 'Eksempel Borger', birthDate: '1940-01-01' },
      timeZone: o.timeZone,
      period: { from: dates[0], to: dates[dates.length - 1] },
      pouches,
    },
    null,
    2,
  )}\n`;
}
