// Bundles an ES module read from stdin for the browser with esbuild, resolving its
// imports in this folder's node_modules: node bundle.mjs NAME OUTFILE < module.mjs
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';

const [name, outfile] = process.argv.slice(2);
await build({
  stdin: {
    contents: readFileSync(0, 'utf8'),
    sourcefile: name,
    resolveDir: dirname(fileURLToPath(import.meta.url)),
  },
  bundle: true,
  format: 'esm',
  platform: 'browser',
  outfile,
  logLevel: 'warning',
});
