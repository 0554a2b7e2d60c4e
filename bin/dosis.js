#!/usr/bin/env node
// Entry point of the `dosis` command: loads the TypeScript sources through tsx and hands over to the dispatcher.
import { register } from 'tsx/esm/api';

register();
const { run } = await import('./cli.ts');
process.exitCode = await run(process.argv.slice(2));
