#!/usr/bin/env node
// Entry point of the `dosis` command from the sources: loads the TypeScript through tsx (development and tests).
import { register } from 'tsx/esm/api';

register();
await import('./dosis.ts');
