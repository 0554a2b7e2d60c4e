// Runs a command's main in this process with a PIN on its stdin, and captures what it prints and its exit status
// (a usage error is status 2, as the `dosis` command makes it).
import { Readable } from 'node:stream';
import { vi } from 'vitest';
import { UsageError } from '../../../bin/cli-kit.js';

export type Main = (argv: string[], io: { stdin: NodeJS.ReadableStream }) => Promise<number>;

export async function runCli(entry: Main, argv: string[], pin = ''): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  try {
    return { code: await entry(argv, { stdin: Readable.from([`${pin}\n`]) }), out, err };
  } catch (e) {
    if (e instanceof UsageError) return { code: 2, out, err: err + e.message };
    throw e;
  } finally {
    vi.restoreAllMocks();
  }
}
