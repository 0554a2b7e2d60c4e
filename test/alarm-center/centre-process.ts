// The alarm centre as a child process (`dosis alarm-center`) for the crash tests, with the waits they share.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

export const wallWait = (ms: number) => new Promise((r) => globalThis.setTimeout(r, ms));

export async function until(cond: () => boolean, limitMs: number): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > limitMs) throw new Error('timed out');
    await wallWait(20);
  }
}

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Starts a centre on `port` and `dbPath`; resolves once it listens. `children` collects it for the file's clean-up. */
export function startCentre(port: number, dbPath: string, children: ChildProcess[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['bin/dosis.js', 'alarm-center', '--port', String(port), '--db', dbPath], { stdio: ['ignore', 'pipe', 'ignore'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (/alarm centre listening on http:\/\//.test(out)) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`centre exited early (${code})`)));
  });
}
