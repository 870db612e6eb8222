// The browser's code: each top-level file of src/web/ is a page's script,
// bundled with what it imports from npm (xterm, asciinema-player,
// markdown-it) into dist/public/, with the stylesheets those packages ship.
// The daemon serves dist/public/ beside public/ (the pages): no CDN, nothing by hand.
import { cpSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'public');
const pages = readdirSync(join(root, 'src', 'web')).filter((f) => f.endsWith('.ts'));
// Shared code lives in src/web/lib/ and is bundled into each page that imports it.
mkdirSync(join(out, 'vendor'), { recursive: true });
await build({
  entryPoints: pages.map((f) => join(root, 'src', 'web', f)),
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  outdir: out,
  logLevel: 'warning',
});
for (const [from, to] of [
  ['node_modules/@xterm/xterm/css/xterm.css', 'xterm.css'],
  ['node_modules/asciinema-player/dist/bundle/asciinema-player.css', 'asciinema-player.css'],
]) cpSync(join(root, from), join(out, 'vendor', to));
