#!/usr/bin/env node
// The kaboot command. The TypeScript is compiled to dist/ by `npm run build`
// (npm install and npm ci run it through the prepare script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
if (!existsSync(entry)) {
  console.error(`kaboot: ${entry} is missing: run "npm run build" in ${fileURLToPath(new URL('..', import.meta.url))}`);
  process.exit(1);
}
const { main } = await import(entry);
process.exitCode = await main(process.argv.slice(2));
