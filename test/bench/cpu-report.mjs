// Preloaded into a soak the bench times (node --import): at exit, writes the CPU seconds the process and the children
// it waited for used (Linux /proc; elsewhere the process alone) to the file named by DOSIS_BENCH_CPU_FILE.
import { readFileSync, writeFileSync } from 'node:fs';

const out = process.env.DOSIS_BENCH_CPU_FILE;
if (out) {
  process.on('exit', () => {
    let seconds;
    try {
      // Fields after the command name: utime, stime, cutime, cstime are the 12th to 15th, in clock ticks (100 a second on Linux).
      const stat = readFileSync('/proc/self/stat', 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      seconds = (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
    } catch {
      const u = process.cpuUsage();
      seconds = (u.user + u.system) / 1e6;
    }
    writeFileSync(out, String(seconds));
  });
}
