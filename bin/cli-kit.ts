// Shared command-line plumbing: option parsing with one-line errors, and --help text.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export class UsageError extends Error {
  readonly code = 'DOSIS_ERR_USAGE';
}

export type Options = NonNullable<ParseArgsConfig['options']>;

export type CommandSpec<O extends Options> = {
  name: string;
  summary: string;
  usage: string;
  options: O;
  /** One line of help per option, keyed by option name. */
  help: { [K in keyof O]: string };
  allowPositionals?: boolean;
  examples?: readonly string[];
};

export function helpText<O extends Options>(spec: CommandSpec<O>): string {
  const rows = Object.entries(spec.options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ' <value>' : ''}`;
    const def = o.default !== undefined ? ` (default: ${String(o.default)})` : '';
    return `  ${flag.padEnd(30)} ${spec.help[name as keyof O]}${def}`;
  });
  const ex = spec.examples?.length ? `\nExamples:\n${spec.examples.map((e) => `  ${e}`).join('\n')}\n` : '';
  return `${spec.summary}\n\nUsage: ${spec.usage}\n\nOptions:\n${rows.join('\n')}\n  -h, --help                     show this help\n${ex}`;
}

/** Parses argv; on --help prints the help and returns undefined. Throws UsageError on bad options. */
export function parseCommand<O extends Options>(spec: CommandSpec<O>, argv: string[]) {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(helpText(spec));
    return undefined;
  }
  try {
    return parseArgs({ args: argv, options: spec.options, allowPositionals: spec.allowPositionals ?? false, strict: true });
  } catch (err) {
    throw new UsageError(`${spec.name}: ${(err as Error).message.split('\n')[0]} (see: dosis ${spec.name} --help)`);
  }
}

/** Reads a whole number option, with bounds; UsageError otherwise. */
export function intOption(name: string, value: string | undefined, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (!/^-?\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

export function numberOption(name: string, value: string | undefined, fallback: number, min = 0, max = Number.MAX_VALUE): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be a number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** A command made of subcommands (`dosis roll`, `dosis robot`): one entry each, listed in this order by --help. */
export type Subcommands<Io> = Record<string, { summary: string; run: (argv: string[], io: Io) => Promise<number> }>;

/** Runs the subcommand named first in `argv`; bare, `--help` and an unknown name answer as every dosis command does. */
export async function runSubcommand<Io>(command: string, intro: string, subs: Subcommands<Io>, argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const width = Math.max(...Object.keys(subs).map((n) => n.length)) + 2;
    const rows = Object.entries(subs).map(([n, c]) => `  ${n.padEnd(width)} ${c.summary}`);
    process.stdout.write(`${intro}\n\nUsage: dosis ${command} <subcommand> [options]\n\nSubcommands:\n${rows.join('\n')}\n\nRun 'dosis ${command} <subcommand> --help' for its options.\n`);
    return name === undefined ? 2 : 0;
  }
  const sub = Object.hasOwn(subs, name) ? subs[name] : undefined;
  if (!sub) {
    process.stderr.write(`dosis ${command}: unknown subcommand ${JSON.stringify(name)} (see: dosis ${command} --help)\n`);
    return 2;
  }
  return sub.run(rest, io);
}
