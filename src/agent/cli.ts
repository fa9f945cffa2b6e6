// Entry point of the bundled agent (initrd/out/kaboot-agent).
import { agentMain } from './main.js';

agentMain(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`kaboot-agent: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
