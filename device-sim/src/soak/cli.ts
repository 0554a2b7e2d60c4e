// `dosis soak`: N dosings of the real controller against the simulator, with the accuracy report as JSON and HTML.

import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { intOption, parseCommand, UsageError } from '../../../bin/cli-kit.js';
import { SystemClock } from '../../../protocol/src/clock.js';
import { renderHtml } from './html.js';
import { buildReport, compareReports, emptyTally, failures, mergeTallies, type RunIdentity, type SoakReport, type SoakTally } from './report.js';
import { EPISODE_DOSINGS, episodeOf, planEpisodes, runSoak, type EpisodeRunner, type EpisodeSpec } from './runner.js';
import { loadSoakProfile, meanPills } from './soak-profile.js';

const spec = {
  name: 'soak',
  summary: 'Accuracy soak test: runs N dosings of the real controller (machine, link, store) against the simulator on a virtual clock (or over pseudo-terminals on the wall clock: --transport pty).',
  usage: 'dosis soak [options]   |   dosis soak --replay SEED:EPISODE [options]   |   dosis soak --compare A.json B.json',
  options: {
    dosings: { type: 'string', default: '10000' },
    seed: { type: 'string' },
    profile: { type: 'string', default: 'reference' },
    transport: { type: 'string', default: 'memory' },
    workers: { type: 'string', default: '1' },
    json: { type: 'string' },
    html: { type: 'string' },
    compare: { type: 'boolean' },
    swarm: { type: 'boolean' },
    exact: { type: 'boolean' },
    replay: { type: 'string' },
    'fail-below-reference': { type: 'boolean' },
  },
  help: {
    dosings: 'number of dosings to run',
    seed: 'seed of the run (default: random, printed); the same seed gives the same figures',
    profile: 'fault profile: none, reference, harsh, or a JSON file (device-sim/profiles/ documents the fields)',
    transport: 'memory (fast) or pty (real pseudo-terminals with serialport on the wall clock, a minute scaled to 120 ms; needs socat): host crashes, power cuts and the real alarm centre behind a faulty network there too; aimed events and care actions run on memory only',
    workers: 'processes to split the run over; merged figures equal a single run\'s (run from the sources, they use the compiled build of `npm run build` when it is newer than every source file)',
    json: 'write the report as JSON to this file',
    html: 'write the report as one self-contained HTML page to this file',
    compare: 'compare two JSON reports given as arguments, class by class; exits 1 when they differ beyond chance',
    swarm: 'each episode draws from its seed which faults are on and at which rates (rare combinations meet)',
    exact: 'play every wire line, idle heartbeats included (slower); by default idle heartbeats are skipped in virtual time with the same odds of wire faults (the report records the mode)',
    replay: 'SEED:EPISODE: run that episode of that run alone, identically (with the same --profile, --swarm and --dosings)',
    'fail-below-reference': 'also exit 1 when the accuracy interval lies wholly below the reference robot\'s 99.88 %',
  },
  allowPositionals: true,
  examples: [
    'dosis soak --dosings 138000 --seed 1 --json soak.json --html soak.html',
    'dosis soak --dosings 1000000 --workers 2 --profile reference',
    'dosis soak --compare before.json after.json',
    'dosis soak --profile harsh --swarm --dosings 20000',
    'dosis soak --profile harsh --swarm --replay 7:12',
  ],
} as const;

export async function main(argv: string[]): Promise<number> {
  const args = parseCommand(spec, argv);
  if (!args) return 0;
  const v = args.values;
  if (v.compare) return compare(args.positionals);
  if (args.positionals.length > 0) throw new UsageError(`soak: unexpected argument ${JSON.stringify(args.positionals[0])} (see: dosis soak --help)`);
  const workers = intOption('workers', v.workers, 1, 1, 64);
  let seed: number;
  let episodes: EpisodeSpec[];
  let dosings: number;
  if (v.replay !== undefined) {
    const m = /^(\d+):(\d+)$/.exec(v.replay);
    if (!m) throw new UsageError(`soak: --replay takes SEED:EPISODE, got ${JSON.stringify(v.replay)}`);
    seed = intOption('replay seed', m[1], 0, 0, 2 ** 32 - 1);
    dosings = intOption('dosings', v.dosings === '10000' ? String(EPISODE_DOSINGS) : v.dosings, EPISODE_DOSINGS, 1, EPISODE_DOSINGS);
    episodes = [episodeOf(seed, Number(m[2]), dosings)];
  } else {
    dosings = intOption('dosings', v.dosings, 10_000, 1, 100_000_000);
    seed = intOption('seed', v.seed, randomInt(0, 2 ** 31), 0, 2 ** 32 - 1);
    episodes = planEpisodes(seed, dosings);
  }
  const swarm = v.swarm === true;
  // The pty transport runs on the wall clock: every line is real there.
  const coalesce = v.exact !== true && v.transport === 'memory';
  if (v.transport !== 'memory' && v.transport !== 'pty') throw new UsageError(`soak: --transport must be memory or pty, got ${JSON.stringify(v.transport)}`);
  const transport = v.transport;
  const profile = loadSoakProfile(v.profile);
  // Loaded only when episodes run in this process: with the compiled build's workers the parent never needs the robot.
  const runEpisode: EpisodeRunner = async (...a) => (await import('./episode.js')).runEpisode(...a);

  const wall = new SystemClock();
  const started = wall.now();
  // Which build ran: read now, not after a run during which the checkout may have moved on.
  const build = { ...identity(argv, swarm, new Date(started).toISOString()), mode: coalesce ? 'coalesced' : 'exact' } as const;
  const progress = new Progress(dosings, wall, process.stderr.isTTY === true);
  process.stderr.write(`soak: ${dosings.toLocaleString('en-GB')} dosings, seed ${seed}, profile ${profile.name}${swarm ? ' (swarm)' : ''} (mean ${meanPills(profile).toFixed(2)} pills/dose), ${transport}${coalesce ? '' : ' (exact)'}, ${workers} worker(s)\n`);

  let stopRequested = false;
  const onSigint = () => {
    if (stopRequested) process.exit(130);
    stopRequested = true;
    process.stderr.write('\nsoak: stopping after the episodes under way (Ctrl-C again to abort without a report)\n');
  };
  process.on('SIGINT', onSigint);
  let result: { tally: SoakTally; interrupted: boolean };
  try {
    result = await runSoak({
      episodes,
      profile,
      transport,
      workers,
      swarm,
      coalesce,
      compiled: true,
      runEpisode,
      shouldStop: () => stopRequested,
      onProgress: (done) => progress.update(done),
    });
  } finally {
    process.off('SIGINT', onSigint);
  }
  progress.done();
  const report = buildReport(result.tally.dosings > 0 ? result.tally : emptyTally(), {
    seed,
    profile: profile.name,
    transport,
    workers,
    wallSeconds: (wall.now() - started) / 1000,
    interrupted: result.interrupted,
    build,
  });
  if (v.json) writeFileSync(v.json, `${JSON.stringify(report, null, 2)}\n`);
  if (v.html) writeFileSync(v.html, renderHtml(report));
  process.stdout.write(summary(report));
  // One line per failing episode: that episode alone, identically.
  for (const ep of report.failingEpisodes) {
    const spec = episodes.find((e) => e.index === ep);
    process.stdout.write(`reproduce: dosis soak --replay ${seed}:${ep} --dosings ${spec?.dosings ?? EPISODE_DOSINGS} --profile ${v.profile}${swarm ? ' --swarm' : ''}${coalesce ? '' : ' --exact'} --transport ${transport}\n`);
  }
  const why = failures(report, { failBelowReference: v['fail-below-reference'] === true });
  if (why.length > 0) process.stdout.write(`FAIL: ${why.join(', ')}\n`);
  return why.length > 0 ? 1 : 0;
}

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The build that ran (package version, git commit when run from a checkout), the date and the command line. */
function identity(argv: string[], swarm: boolean, date: string): RunIdentity {
  let version = 'unknown';
  try {
    version = (JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    // An installed build without its package.json: the commit still says which.
  }
  let commit: string | null = null;
  try {
    commit = execFileSync('git', ['-C', ROOT, 'rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || null;
  } catch {
    commit = null;
  }
  return { version, commit, date, commandLine: ['dosis', 'soak', ...argv].join(' '), swarm };
}

function summary(r: SoakReport): string {
  const pct = (x: number) => `${(x * 100).toFixed(3)} %`;
  const reasons = Object.entries(r.reasons.yellow).map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
  const reds = Object.entries(r.reasons.red).map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
  return [
    `dosings ${r.dosings}  pills ${r.pills}  missed (never pressed in time) ${r.missed}${r.interrupted ? '  (interrupted)' : ''}`,
    `correct ${r.outcomes.correct}  green ${r.outcomes.green}  yellow ${r.outcomes.yellow}  red ${r.outcomes.red}`,
    `robot failures (pressed, not received): registered ${r.robotFailures.registered}, unregistered ${r.robotFailures.unregistered}`,
    ...(r.care ? [careLine(r.care)] : []),
    `world: host crashes ${r.world.hostCrashes}, power cuts ${r.world.powerCuts}, packing errors ${Object.entries(r.world.packingErrors).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`,
    `alarm centre: ${Object.entries(r.world.network).map(([k, n]) => `${k} ${n}`).join(', ') || 'not used'}`,
    `accuracy ${pct(r.accuracy)}  95 % CI ${pct(r.accuracyCi95.low)} – ${pct(r.accuracyCi95.high)}  (reference 99.880 %: ${r.verdict})`,
    `yellow reasons: ${reasons}`,
    `red reasons: ${reds}`,
    `invariant violations: ${r.invariantViolations.length}`,
    `dose-machine transitions exercised: ${Object.keys(r.coverage.transitions).length - r.coverage.unexercised.length} of ${Object.keys(r.coverage.transitions).length} (the report's coverage lists each)`,
    `${r.wallSeconds.toFixed(1)} s, ${Math.round(r.dosingsPerSecond)} dosings/s`,
    '',
  ].join('\n');
}

/** Doses the staff took out of dispensing: their own line (not dosings, not missed), with the actions behind them. */
function careLine(c: NonNullable<SoakReport['care']>): string {
  const a = c.actions;
  return `out of dispensing (not dosings, not missed): suspended ${c.doses.suspended}, travel ${c.doses.travel}, withdrawn ${c.doses.withdrawn}`
    + `  (staff: pauses ${a.pause}, ended early ${a.resumeEarly}, travel packs ${a.travel}, withdrawals from a time ${a.withdrawFromTime}, by label ${a.withdrawByLabel})`;
}

function compare(files: string[]): number {
  if (files.length !== 2) throw new UsageError('soak: --compare takes two JSON report files (see: dosis soak --help)');
  const [a, b] = files.map((f) => {
    let data: unknown;
    try {
      data = JSON.parse(readFileSync(f, 'utf8'));
    } catch (err) {
      throw new UsageError(`soak: cannot read report ${f}: ${(err as Error).message}`);
    }
    if ((data as { format?: string })?.format !== 'dosis-soak-report/1') throw new UsageError(`soak: ${f} is not a dosis soak report`);
    return data as SoakReport;
  }) as [SoakReport, SoakReport];
  const c = compareReports(a, b);
  const mode = (r: SoakReport) => r.build?.mode ?? 'exact (recorded before the modes)';
  process.stdout.write(`modes: A ${mode(a)}, B ${mode(b)}\n${c.summary}\n`);
  for (const k of c.classes) process.stdout.write(`  ${k.differs ? '≠' : '='} ${k.name}: ${k.a} → ${k.b} (p = ${k.test.pValue.toPrecision(2)})\n`);
  return c.differ ? 1 : 0;
}

/** Progress on stderr: a redrawn bar on a terminal, a plain line every 10 % otherwise. */
class Progress {
  #lastPlainTenth = -1;
  #sum = emptyTally();
  readonly #started: number;
  constructor(
    private readonly total: number,
    private readonly wall: SystemClock,
    private readonly tty: boolean,
  ) {
    this.#started = wall.now();
  }

  update(done: SoakTally[]): void {
    const latest = done.at(-1);
    if (!latest) return;
    this.#sum = mergeTallies([this.#sum, { ...latest, samples: [], invariantViolations: [], failingEpisodes: [], paths: {}, firstDosing: this.#sum.dosings }]);
    const t = this.#sum;
    const secs = Math.max(0.001, (this.wall.now() - this.#started) / 1000);
    const rate = Math.round(t.dosings / secs);
    const left = rate > 0 ? Math.max(0, (this.total - t.dosings) / rate) : NaN;
    const eta = Number.isFinite(left) ? `, ~${left >= 120 ? `${Math.round(left / 60)} min` : `${Math.round(left)} s`} left` : '';
    const o = t.outcomes;
    const counts = `correct ${o.correct} green ${o.green} yellow ${o.yellow} red ${o.red}`;
    if (this.tty) {
      const width = 30;
      const filled = Math.round((t.dosings / this.total) * width);
      process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${t.dosings}/${this.total} ${rate}/s${eta} ${counts}\x1b[K`);
    } else {
      const tenth = Math.floor((t.dosings / this.total) * 10);
      if (tenth !== this.#lastPlainTenth) {
        this.#lastPlainTenth = tenth;
        process.stderr.write(`soak: ${t.dosings}/${this.total} dosings, ${rate}/s${eta}, ${counts}\n`);
      }
    }
  }

  done(): void {
    if (this.tty) process.stderr.write('\n');
  }
}
