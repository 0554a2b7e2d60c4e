// Runs a soak as a sequence of independent episodes, in this process or split over worker processes.
//
// A run of N dosings is cut into episodes of EPISODE_DOSINGS, each with a seed
// derived from the run's seed and its index. Episodes share nothing, so any
// split over workers adds up to the same tallies as one process running them
// in order: merged figures equal a single run's for the same seed.

import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mergeTallies, type SoakTally } from './report.js';
import type { SoakProfile } from './soak-profile.js';

export const EPISODE_DOSINGS = 1000;

export type EpisodeSpec = { index: number; seed: number; firstDosing: number; dosings: number };
export type EpisodeRunner = (spec: EpisodeSpec, profile: SoakProfile, transport: 'memory' | 'pty', opts?: { swarm?: boolean; coalesce?: boolean }) => Promise<SoakTally>;

/** A 32-bit seed for episode `index` of a run seeded `seed` (splitmix32 mix, so neighbours are unrelated). */
export function episodeSeed(seed: number, index: number): number {
  let z = (seed ^ Math.imul(index + 1, 0x9e3779b9)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/** Episode `index` of a run seeded `seed`, alone (a replay): the same spec as in the whole run. */
export function episodeOf(seed: number, index: number, dosings = EPISODE_DOSINGS, size = EPISODE_DOSINGS): EpisodeSpec {
  return { index, seed: episodeSeed(seed, index), firstDosing: index * size, dosings };
}

export function planEpisodes(seed: number, dosings: number, size = EPISODE_DOSINGS): EpisodeSpec[] {
  const out: EpisodeSpec[] = [];
  for (let first = 0, i = 0; first < dosings; first += size, i++) {
    out.push({ index: i, seed: episodeSeed(seed, i), firstDosing: first, dosings: Math.min(size, dosings - first) });
  }
  return out;
}

export type RunOptions = {
  episodes: EpisodeSpec[];
  profile: SoakProfile;
  transport: 'memory' | 'pty';
  workers: number;
  /** Each episode draws its faults and rates from its seed. */
  swarm?: boolean;
  /** Idle heartbeats skipped in virtual time (the memory transport); otherwise every line is played. */
  coalesce?: boolean;
  /**
   * Run from the sources, episodes go to worker processes on the compiled build (`npm run build`, even for one
   * worker) when one newer than every source file exists: plain node starts faster and runs faster than tsx.
   */
  compiled?: boolean;
  /** Called after every finished episode with the tallies so far. */
  onProgress?: (done: SoakTally[]) => void;
  /** Set to stop after the episodes under way. */
  shouldStop?: () => boolean;
  runEpisode: EpisodeRunner;
};

/** Runs the episodes; returns the merged tally of those that finished and whether the run was stopped early. */
export async function runSoak(opts: RunOptions): Promise<{ tally: SoakTally; interrupted: boolean }> {
  const done: SoakTally[] = [];
  const queue = [...opts.episodes];
  let interrupted = false;
  const finish = (t: SoakTally) => {
    done.push(t);
    opts.onProgress?.(done);
  };
  const worker = opts.compiled ? compiledWorker() : undefined;
  if (opts.workers <= 1 && !worker) {
    for (const ep of queue) {
      if (opts.shouldStop?.()) {
        interrupted = true;
        break;
      }
      finish(await opts.runEpisode(ep, opts.profile, opts.transport, { swarm: opts.swarm === true, coalesce: opts.coalesce === true }));
    }
  } else {
    interrupted = await runInWorkers(queue, opts, finish, worker);
  }
  return { tally: mergeTallies(done), interrupted };
}

// From the sources the worker is TypeScript loaded through tsx; from dist/ it is compiled JavaScript on plain node.
const FROM_SOURCES = import.meta.url.endsWith('.ts');
const WORKER = fileURLToPath(new URL(FROM_SOURCES ? './worker.ts' : './worker.js', import.meta.url));
// Resolved here, not from the working directory, so a soak started from any folder finds tsx.
const TSX = FROM_SOURCES ? import.meta.resolve('tsx') : '';
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The folders a build compiles (bin/build.ts SHIPPED): a file changed in one since the build makes the build stale. */
const BUILT = ['protocol', 'firmware-host', 'device-sim', 'alarm-center', 'hardware', 'bin'];

/**
 * The compiled worker of dist/ when running from the sources and dist/ was built after the last change to any file
 * it is built from (its package.json is written last); undefined otherwise: a stale build never runs a soak.
 */
export function compiledWorker(root = ROOT): string | undefined {
  if (!FROM_SOURCES) return undefined;
  const worker = join(root, 'dist', 'device-sim', 'src', 'soak', 'worker.js');
  const stamp = join(root, 'dist', 'package.json');
  if (!existsSync(worker) || !existsSync(stamp)) return undefined;
  const builtMs = statSync(stamp).mtimeMs;
  const newer = (dir: string): boolean => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      // Documentation is not built (bin/build.ts leaves .md out).
      if (e.isDirectory() ? newer(path) : !e.name.endsWith('.md') && statSync(path).mtimeMs > builtMs) return true;
    }
    return false;
  };
  return BUILT.some((d) => existsSync(join(root, d)) && newer(join(root, d))) ? undefined : worker;
}

export type ToWorker = { episode: EpisodeSpec; profile: SoakProfile; transport: 'memory' | 'pty'; swarm: boolean; coalesce: boolean };
type FromWorker = { ok: true; tally: SoakTally } | { ok: false; error: string };

function runInWorkers(queue: EpisodeSpec[], opts: RunOptions, finish: (t: SoakTally) => void, compiled: string | undefined): Promise<boolean> {
  return new Promise((resolve, reject) => {
    let running = 0;
    let interrupted = false;
    let failed = false;
    const children: ChildProcess[] = [];
    const feed = (child: ChildProcess) => {
      if (failed) return;
      if (opts.shouldStop?.()) interrupted = true;
      const next = interrupted ? undefined : queue.shift();
      if (!next) {
        child.disconnect();
        return;
      }
      running++;
      child.send({ episode: next, profile: opts.profile, transport: opts.transport, swarm: opts.swarm === true, coalesce: opts.coalesce === true } satisfies ToWorker);
    };
    let alive = 0;
    const script = compiled ?? WORKER;
    const loader = FROM_SOURCES && !compiled ? ['--import', TSX] : [];
    for (let i = 0; i < Math.max(1, opts.workers); i++) {
      // SIGINT goes to the whole process group; workers ignore it and finish their episode.
      // One GC thread per worker: with a worker per core, V8's helper threads would only take turns with the other worker.
      const child = fork(script, [], { execArgv: [...loader, '--single-threaded-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      alive++;
      children.push(child);
      child.on('message', (m: FromWorker) => {
        running--;
        if (!m.ok) {
          failed = true;
          for (const c of children) c.kill();
          reject(new Error(`soak worker failed: ${m.error}`));
          return;
        }
        finish(m.tally);
        feed(child);
      });
      child.on('exit', (code) => {
        alive--;
        if (code !== 0 && !failed) {
          failed = true;
          for (const c of children) c.kill();
          reject(new Error(`soak worker exited with code ${code}`));
        } else if (alive === 0 && !failed) {
          resolve(interrupted || (running > 0));
        }
      });
      feed(child);
    }
  });
}
