// The compiled dosis command for tests: one build per state of the sources, shared by every test file and run.
//
// Tests that start `dosis` from dist/ call builtDist(). The build goes to a temporary folder named after a hash of
// the sources, so the developer's own dist/ is left alone, and a second test file (or the next run with unchanged
// sources) finds the build done. Each build is made in a folder of its own and renamed into place, so two test
// processes building at once both end up with a whole build.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build, ROOT, SHIPPED } from '../../bin/build.js';

const DAY_MS = 24 * 3600_000;

function files(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...files(p));
    else out.push(p);
  }
  return out;
}

function sourcesHash(): string {
  const h = createHash('sha256');
  const all = [...SHIPPED.flatMap((part) => files(join(ROOT, part))), ...['package.json', 'tsconfig.json', 'tsconfig.build.json'].map((f) => join(ROOT, f))];
  for (const f of all.sort()) h.update(f.slice(ROOT.length)).update('\0').update(readFileSync(f)).update('\0');
  return h.digest('hex').slice(0, 16);
}

/** Builds of other source states not used for a day. */
function prune(keep: string): void {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith('dosis-dist-') || name === keep) continue;
    const p = join(tmpdir(), name);
    try {
      if (Date.now() - statSync(p).mtimeMs > DAY_MS) rmSync(p, { recursive: true, force: true });
    } catch {
      // Another process pruned it first.
    }
  }
}

let cached: string | undefined;

/** The folder of a build of the current sources (its entry point is bin/dosis.js), building it if needed. */
export function builtDist(): string {
  if (cached) return cached;
  const name = `dosis-dist-${sourcesHash()}`;
  const dir = join(tmpdir(), name);
  if (!existsSync(join(dir, 'bin', 'dosis.js'))) {
    const work = `${dir}.${process.pid}.tmp`;
    build(work);
    // dist/ finds its dependencies the way a checkout's dist/ does: through node_modules in a parent folder.
    symlinkSync(join(ROOT, 'node_modules'), join(work, 'node_modules'));
    try {
      renameSync(work, dir);
    } catch {
      // Another test process finished the same build first; use its copy.
      rmSync(work, { recursive: true, force: true });
    }
  } else {
    const now = new Date();
    utimesSync(dir, now, now);
  }
  prune(name);
  return (cached = dir);
}
