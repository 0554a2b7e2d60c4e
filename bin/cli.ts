// The `dosis` dispatcher: one subcommand per part of the system, each with its own --help.
import { UsageError } from './cli-kit.js';

type Main = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, { summary: string; load: () => Promise<{ main: Main }> }> = {
  demo: { summary: 'the whole system on the simulator: robot, citizen screen, alarm centre (what npm start runs)', load: () => import('../device-sim/src/demo/cli.js') },
  sim: { summary: 'the device simulator, on a pseudo-terminal (--pty) or a serial path', load: () => import('../device-sim/src/cli.js') },
  host: { summary: 'the robot controller: link to the MCU, dispensing, screens', load: () => import('../firmware-host/src/cli.js') },
  soak: { summary: 'accuracy soak test of the controller against the simulator', load: () => import('../device-sim/src/soak/cli.js') },
  roll: { summary: 'validate and load roll manifests', load: () => import('../firmware-host/src/roll/cli.js') },
  robot: { summary: "set a robot up for its citizen; pause, travel and withdrawal on its database", load: () => import('../firmware-host/src/care/cli.js') },
  'alarm-center': { summary: 'the alarm centre service and its set-up commands', load: () => import('../alarm-center/src/cli.js') },
  backup: { summary: 'a consistent copy of a live robot or alarm-centre database', load: () => import('./backup.js') },
};

function usage(): string {
  const rows = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(14)} ${c.summary}`);
  return `dosis — in-home medication-dispensing robot and its alarm centre\n\nUsage: dosis <command> [options]\n\nCommands:\n${rows.join('\n')}\n\nRun 'dosis <command> --help' for a command's options.\n`;
}

export async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`dosis: unknown command ${JSON.stringify(name)} (see: dosis --help)\n`);
    return 2;
  }
  try {
    const mod = await cmd.load();
    return await mod.main(rest);
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code === 'DOSIS_ERR_USAGE') {
      process.stderr.write(`dosis ${err instanceof Error ? err.message : String(err)}\n`);
      return 2;
    }
    const e = err as Error & { code?: string };
    if (typeof e.code === 'string' && e.code.startsWith('DOSIS_ERR_')) {
      process.stderr.write(`dosis ${name}: ${e.message}\n`);
      return 1;
    }
    throw err;
  }
}
