#!/usr/bin/env node
// Entry point of the `dosis` command as built: `npm run build` compiles this to dist/bin/dosis.js, which runs on plain node.
import { run } from './cli.js';

process.exitCode = await run(process.argv.slice(2));
