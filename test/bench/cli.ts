// `npm run bench`: prints the speed figures of each part. Figures, not pass/fail: CI machines are noisy.
import { intOption, parseCommand } from '../../bin/cli-kit.js';

type Args = { baseline?: string | undefined; 'db-dir'?: string | undefined; runs?: string | undefined; seconds?: string | undefined; robots?: string | undefined; compress?: string | undefined; sockets?: string | undefined; 'outbox-hours'?: string | undefined };
const BENCHES: Record<string, (a: Args) => Promise<unknown>> = {
  link: async () => (await import('./link-bench.js')).benchLink(),
  soak: async (a) => (await import('./soak-bench.js')).benchSoak({ baseline: a.baseline }),
  alarm: async (a) => (await import('./alarm-bench.js')).benchAlarm({ runs: intOption('runs', a.runs, 3, 1, 50), durationS: intOption('seconds', a.seconds, 5, 1, 600), dbDir: a['db-dir'] }),
  store: async (a) => (await import('./store-bench.js')).benchStore({ dbDir: a['db-dir'] }),
  fleet: async (a) =>
    (await import('./fleet-bench.js')).benchFleet({
      robots: intOption('robots', a.robots, 40_000, 1, 1_000_000), compress: intOption('compress', a.compress, 5, 1, 10_000), sockets: intOption('sockets', a.sockets, 200, 1, 10_000),
      outboxHours: intOption('outbox-hours', a['outbox-hours'], 1, 0, 24 * 14),
    }),
};
/** Minutes long, so only when asked for by name. */
const ON_REQUEST = new Set(['fleet']);

const spec = {
  name: 'bench',
  summary: 'Print speed figures: protocol framing and link round trips, soak dosings/s, alarm-centre ingestion and its store alone; the fleet on request.',
  usage: 'npm run bench -- [--only link|soak|alarm|store|fleet] [--baseline REF] [--runs N --seconds S --db-dir DIR] [--robots N --compress X --sockets N --outbox-hours H]',
  options: { only: { type: 'string' }, baseline: { type: 'string' }, 'db-dir': { type: 'string' }, runs: { type: 'string' }, seconds: { type: 'string' }, robots: { type: 'string' }, compress: { type: 'string' }, sockets: { type: 'string' }, 'outbox-hours': { type: 'string' } },
  help: {
    only: `run one benchmark (${Object.keys(BENCHES).join(', ')}; fleet runs only when named)`,
    baseline: 'soak: the git ref whose soak to time beside this checkout\'s (default: the newest tag, else the main branch)',
    runs: 'alarm: alternating runs of the bare route and the centre, medians compared (default 3)',
    seconds: 'alarm: seconds per run (default 5)',
    'db-dir': 'alarm, store: where the database file goes (default: the temporary directory; /dev/shm to take fsync out)',
    robots: 'fleet: robots (default 40000)',
    compress: 'fleet: time compression of the heartbeat interval (default 5)',
    sockets: 'fleet: keep-alive sockets the robots share (default 200)',
    'outbox-hours': 'fleet: hours of outage whose events each robot flushes in the storm (default 1)',
  },
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
    if (only ? name !== only : ON_REQUEST.has(name)) continue;
    process.stdout.write(`# ${name}\n`);
    await run(args.values);
  }
  return 0;
}

// `npm run bench` runs this file directly: the benchmarks are the repository's, not part of the `dosis` command that ships.
if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = await main(process.argv.slice(2));
