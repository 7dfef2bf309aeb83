// Builds dist/script.js (what the api embeds and serves at /js/script.js)
// from src/script.js with esbuild, and prints its size raw and gzipped.
// `node build.mjs --check` builds to memory and fails if dist/ differs.
import { build } from 'esbuild';
import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const LIMIT_GZIPPED = 1536; // the bound: 1.5 KB gzipped
const out = await build({
  entryPoints: ['src/script.js'],
  bundle: false,
  minify: true,
  target: 'es2017',
  write: false,
  legalComments: 'none',
});
const code = out.outputFiles[0].text;
const gz = gzipSync(code, { level: 9 }).length;
console.log(`tracker: ${code.length} bytes, ${gz} bytes gzipped (limit ${LIMIT_GZIPPED})`);
if (gz > LIMIT_GZIPPED) {
  console.error('the tracker is over its size limit');
  process.exit(1);
}
if (process.argv.includes('--check')) {
  const committed = readFileSync('dist/script.js', 'utf8');
  if (committed !== code) {
    console.error('tracker/dist/script.js is stale: run `npm run build` in tracker/ and commit dist/');
    process.exit(1);
  }
} else {
  writeFileSync('dist/script.js', code);
}
