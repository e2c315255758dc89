#!/usr/bin/env node
// Entry point of the `tsdpo` command: runs the compiled CLI (npm ci / npm run build produce dist/).
import { main } from '../dist/src/cli/main.js';
main(process.argv).catch((err) => {
  console.error(`tsdpo: ${err && err.message ? err.message : err}`);
  if (process.env.TSDPO_DEBUG) console.error(err);
  process.exit(1);
});
