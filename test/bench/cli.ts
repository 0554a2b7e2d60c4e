// `npm run bench`: prints the speed figures of each part. Figures, not pass/fail: CI machines are noisy.
import { parseCommand } from '../../bin/cli-kit.js';

const BENCHES: Record<string, () => Promise<unknown>> = {
  link: async () => (await import('./link-bench.js')).benchLink(),
  soak: async () => (await import('./soak-bench.js')).benchSoak(),
  alarm: async () => (await import('./alarm-bench.js')).benchAlarm(),
};

const spec = {
  name: 'bench',
  summary: 'Print speed figures: protocol framing and link round trips, soak dosings/s, alarm-centre ingestion.',
  usage: 'npm run bench -- [--only link|soak|alarm]',
  options: { only: { type: 'string' } },
  help: { only: `run one benchmark (${Object.keys(BENCHES).join(', ')})` },
} as const;

export async function main(argv: string[]): Promise<number> {
  const args = parseCommand(spec, argv);
  if (!args) return 0;
  const only = args.values.only;
  if (only !== undefined && !(only in BENCHES)) {
    process.stderr.write(`bench: unknown benchmark ${JSON.stringify(only)} (one of ${Object.keys(BENCHES).join(', ')})\n`);
    return 2;
  }
  for (const [name, run] of Object.entries(BENCHES)) {
    if (only && name !== only) continue;
    process.stdout.write(`# ${name}\n`);
    await run();
  }
  return 0;
}

// `npm run bench` runs this file directly: the benchmarks are the repository's, not part of the `dosis` command that ships.
if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = await main(process.argv.slice(2));
