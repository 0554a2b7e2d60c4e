// Soak speed: dosings per second in memory (one process and two workers), over real ptys, memory over a long
// run, and where the time goes (a CPU profile of the in-memory soak, by file).
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, ROOT } from '../../bin/build.js';
import { compiledWorker } from '../../device-sim/src/soak/runner.js';
import { runEpisode } from '../../device-sim/src/soak/episode.js';
import { planEpisodes, runSoak } from '../../device-sim/src/soak/runner.js';
import { loadSoakProfile, type SoakProfile } from '../../device-sim/src/soak/soak-profile.js';
import type { SoakTally } from '../../device-sim/src/soak/report.js';

export type SoakFigures = {
  /** Dosings per CPU second of `dosis soak`, medians over alternating runs: this checkout (both modes) and the baseline's. */
  perCpuSecond: { head: number; headExact: number; baseline: number | null; baselineRef: string | null };
  memoryPerSecond: number;
  memoryTwoWorkersPerSecond: number;
  ptyPerSecond: number | null;
  ptyTwoWorkersPerSecond: number | null;
  heapMb: number[];
};

const SEED = 20_260_105;
const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);

async function timed(profile: SoakProfile, dosings: number, transport: 'memory' | 'pty', workers: number): Promise<{ tally: SoakTally; perSecond: number }> {
  const started = performance.now();
  const { tally } = await runSoak({ episodes: planEpisodes(SEED, dosings), profile, transport, workers, runEpisode, coalesce: transport === 'memory' });
  const seconds = (performance.now() - started) / 1000;
  return { tally, perSecond: tally.dosings / seconds };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-GB');
const line = (s: string) => process.stdout.write(`${s}\n`);

export async function benchSoak(o: { baseline?: string | undefined } = {}): Promise<SoakFigures> {
  const profile = loadSoakProfile('reference');
  const n = env('DOSIS_BENCH_SOAK_DOSINGS', 10_000);
  // 10,000 dosings a run: a process's start-up and the JIT's warm-up cost about two CPU seconds whatever the length of
  // the run, a third of a 3,000-dosing one; a real soak runs 10^5 to 10^6 dosings.
  const perCpuSecond = versusBaseline(o.baseline ?? process.env.DOSIS_BENCH_BASELINE, env('DOSIS_BENCH_CPU_DOSINGS', 10_000), env('DOSIS_BENCH_CPU_RUNS', 3));

  // Memory over a long run: heap after each block of episodes in this process.
  const heapMb: number[] = [];
  let dosingsDone = 0;
  const started = performance.now();
  for (let block = 0; block < 4; block++) {
    const episodes = planEpisodes(SEED + block, Math.ceil(n / 4));
    const { tally } = await runSoak({ episodes, profile, transport: 'memory', workers: 1, runEpisode, coalesce: true });
    dosingsDone += tally.dosings;
    (globalThis as { gc?: () => void }).gc?.();
    heapMb.push(process.memoryUsage().heapUsed / 2 ** 20);
  }
  const memoryPerSecond = dosingsDone / ((performance.now() - started) / 1000);
  line(`soak memory, 1 process:  ${fmt(memoryPerSecond)} dosings/s (${fmt(dosingsDone)} dosings, reference profile, store on)`);
  line(`  138,000 dosings ≈ ${(138_000 / memoryPerSecond).toFixed(0)} s; heap after each quarter: ${heapMb.map((m) => `${m.toFixed(0)} MB`).join(', ')}`);
  line(`  (flat heap: nothing outlives its episode; DOSIS_BENCH_SOAK_DOSINGS=1000000 shows it to 10^6 dosings, run with node --expose-gc for exact figures)`);

  const two = await timed(profile, n * 2, 'memory', 2);
  line(`soak memory, 2 workers:  ${fmt(two.perSecond)} dosings/s (${fmt(two.tally.dosings)} dosings); 1,000,000 dosings ≈ ${(1_000_000 / two.perSecond / 60).toFixed(1)} min at most`);
  line('  (a short run: the workers\' start-up and JIT warm-up weigh in; a long run goes faster)');

  let ptyPerSecond: number | null = null;
  let ptyTwoWorkersPerSecond: number | null = null;
  if (spawnSync('socat', ['-V'], { stdio: 'ignore' }).status === 0) {
    const p = env('DOSIS_BENCH_PTY_DOSINGS', 1000);
    const one = await timed(profile, p, 'pty', 1);
    ptyPerSecond = one.perSecond;
    line(`soak pty, 1 process:     ${fmt(ptyPerSecond)} dosings/s (${fmt(one.tally.dosings)} dosings over socat ptys, wall clock)`);
    const both = await timed(profile, p * 2, 'pty', 2);
    ptyTwoWorkersPerSecond = both.perSecond;
    line(`soak pty, 2 workers:     ${fmt(ptyTwoWorkersPerSecond)} dosings/s (${fmt(both.tally.dosings)} dosings)`);
  } else {
    line('soak pty: skipped, socat is not installed (apt-get install socat)');
  }

  await whereTheTimeGoes(profile, env('DOSIS_BENCH_PROFILE_DOSINGS', 3000));
  return { perCpuSecond, memoryPerSecond, memoryTwoWorkersPerSecond: two.perSecond, ptyPerSecond, ptyTwoWorkersPerSecond, heapMb };
}

const CPU_REPORT = fileURLToPath(new URL('./cpu-report.mjs', import.meta.url));

/** The git ref to compare with: the one asked for, else the newest tag (the previous release), else the main branch. */
function baselineRef(asked: string | undefined): string | undefined {
  const git = (...args: string[]) => spawnSync('git', ['-C', ROOT, ...args], { encoding: 'utf8' });
  if (asked) return asked;
  const tag = git('describe', '--tags', '--abbrev=0');
  if (tag.status === 0 && tag.stdout.trim()) return tag.stdout.trim();
  const main = git('rev-parse', '--verify', '--quiet', 'main');
  const head = git('rev-parse', 'HEAD');
  return main.status === 0 && main.stdout.trim() !== head.stdout.trim() ? 'main' : undefined;
}

/** CPU seconds of one `dosis soak` from the checkout at `root` (its own process and the workers it waited for). */
function soakCpuSeconds(root: string, args: string[]): number {
  const file = join(mkdtempSync(join(tmpdir(), 'dosis-bench-cpu-')), 'cpu');
  const r = spawnSync(process.execPath, ['--import', CPU_REPORT, join(root, 'bin', 'dosis.js'), 'soak', ...args], {
    cwd: root, env: { ...process.env, DOSIS_BENCH_CPU_FILE: file }, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8',
  });
  if (r.status !== 0 && r.status !== 1) throw new Error(`soak in ${root} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  const seconds = Number(readFileSync(file, 'utf8'));
  rmSync(join(file, '..'), { recursive: true, force: true });
  return seconds;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * `dosis soak` dosings per CPU second, this checkout (its default coalesced mode and --exact) against the baseline (a
 * git ref checked out into a temporary worktree, sharing node_modules), the three run in turn `runs` times so that a
 * machine whose speed drifts slows them alike. From the sources, the soak runs on the compiled build: it is built
 * first when dist/ is older than the sources, as `npm run build` does.
 */
function versusBaseline(asked: string | undefined, dosings: number, runs: number): SoakFigures['perCpuSecond'] {
  const ref = baselineRef(asked);
  if (!compiledWorker()) {
    line('building dist/ (npm run build) so that the soak runs on the compiled build, as it does once built');
    build();
  }
  const args = ['--profile', 'reference', '--dosings', String(dosings), '--seed', String(SEED)];
  const head: number[] = [];
  const headExact: number[] = [];
  const base: number[] = [];
  let dir: string | undefined;
  if (ref) {
    dir = mkdtempSync(join(tmpdir(), 'dosis-bench-baseline-'));
    const add = spawnSync('git', ['-C', ROOT, 'worktree', 'add', '--detach', dir, ref], { encoding: 'utf8' });
    if (add.status !== 0) {
      line(`soak vs ${ref}: cannot check it out (${add.stderr.trim()}); a shallow CI checkout needs fetch-depth: 0`);
      rmSync(dir, { recursive: true, force: true });
      dir = undefined;
    } else if (existsSync(join(ROOT, 'node_modules'))) symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  }
  try {
    for (let i = 0; i < runs; i++) {
      if (dir) base.push(dosings / soakCpuSeconds(dir, args));
      head.push(dosings / soakCpuSeconds(ROOT, args));
      headExact.push(dosings / soakCpuSeconds(ROOT, [...args, '--exact']));
    }
  } finally {
    if (dir) spawnSync('git', ['-C', ROOT, 'worktree', 'remove', '--force', dir]);
  }
  const fig = { head: median(head), headExact: median(headExact), baseline: dir ? median(base) : null, baselineRef: dir ? ref! : null };
  const vs = (x: number) => (fig.baseline ? ` (${(x / fig.baseline).toFixed(2)}× ${fig.baselineRef})` : '');
  line(`soak dosings per CPU second (dosis soak, reference profile, ${fmt(dosings)} dosings, median of ${runs} alternating runs):`);
  line(`  this checkout:          ${fmt(fig.head)}${vs(fig.head)}`);
  line(`  this checkout, --exact: ${fmt(fig.headExact)}${vs(fig.headExact)}`);
  line(fig.baseline ? `  ${fig.baselineRef}: ${' '.repeat(Math.max(0, 22 - fig.baselineRef!.length))}${fmt(fig.baseline)}` : '  baseline: none (no tag, no main branch other than this checkout; name one with --baseline REF)');
  return fig;
}

type ProfileNode = { id: number; callFrame: { url: string; functionName: string } };

/** CPU profile of an in-memory soak, self time summed by source file (dependencies by package). */
async function whereTheTimeGoes(profile: SoakProfile, dosings: number): Promise<void> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  await runSoak({ episodes: planEpisodes(SEED, dosings), profile, transport: 'memory', workers: 1, runEpisode });
  const { profile: cpu } = (await session.post('Profiler.stop')) as unknown as {
    profile: { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
  };
  session.disconnect();
  const byNode = new Map<number, number>();
  cpu.samples.forEach((id, i) => byNode.set(id, (byNode.get(id) ?? 0) + (cpu.timeDeltas[i] ?? 0)));
  const byPlace = new Map<string, number>();
  let total = 0;
  for (const node of cpu.nodes) {
    const t = byNode.get(node.id) ?? 0;
    total += t;
    byPlace.set(place(node), (byPlace.get(place(node)) ?? 0) + t);
  }
  line(`where the time goes (self time, ${fmt(dosings)} in-memory dosings):`);
  for (const [k, t] of [...byPlace].sort((a, b) => b[1] - a[1]).slice(0, 12)) line(`  ${((t / total) * 100).toFixed(1).padStart(5)} %  ${k}`);
}

const SQLITE_NATIVE = new Set(['all', 'run', 'get', 'iterate', 'pragma', 'exec', 'prepare', 'transaction']);

function place(node: ProfileNode): string {
  const url = node.callFrame.url;
  // Statement and database methods without a script are better-sqlite3's C++ side: SQLite itself.
  if (!url) return SQLITE_NATIVE.has(node.callFrame.functionName) ? 'better-sqlite3 (dependency)' : node.callFrame.functionName || '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return `${pkg[1]} (dependency)`;
  if (url.startsWith('node:')) return 'node internals';
  const m = /\/(firmware-host|device-sim|protocol|hardware|alarm-center)\/(.*)$/.exec(url);
  return m ? `${m[1]}/${m[2]}` : url;
}
