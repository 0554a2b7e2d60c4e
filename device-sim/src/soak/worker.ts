// A soak worker process: runs the episodes its parent sends over IPC and sends back their tallies.

import { runEpisode } from './episode.js';
import type { ToWorker } from './runner.js';

// The parent decides when to stop; Ctrl-C in the terminal must not kill an episode half-way.
process.on('SIGINT', () => undefined);

process.on('message', (m: ToWorker) => {
  runEpisode(m.episode, m.profile, m.transport, { swarm: m.swarm, coalesce: m.coalesce }).then(
    (tally) => process.send?.({ ok: true, tally }),
    (err: unknown) => process.send?.({ ok: false, error: err instanceof Error ? err.stack ?? err.message : String(err) }),
  );
});
process.on('disconnect', () => process.exit(0));
