/**
 * Builds the operator console (console/: preact + TypeScript) into one script, one stylesheet and
 * its page, with esbuild: everything the pages need is in these files (no CDN; they work offline).
 * `npm run build` runs it after tsc; the gateway serves the result at /console.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export const CONSOLE_PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Coulomb console</title>
    <link rel="stylesheet" href="/console/assets/app.css" />
  </head>
  <body>
    <div id="app"></div>
    <script type="module" src="/console/assets/app.js"></script>
  </body>
</html>
`;

/** Writes index.html, app.js and app.css into `outDir`. */
export async function buildConsole(outDir: string): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: [join(root, 'console/app.tsx')],
    outfile: join(outDir, 'app.js'),
    bundle: true,
    format: 'esm',
    target: 'es2022',
    minify: true,
    jsx: 'automatic',
    jsxImportSource: 'preact',
    tsconfig: join(root, 'console/tsconfig.json'),
    logLevel: 'warning',
  });
  // The chart library's stylesheet, then the console's own.
  const uplotCss = createRequire(import.meta.url).resolve('uplot/dist/uPlot.min.css');
  writeFileSync(
    join(outDir, 'app.css'),
    readFileSync(uplotCss, 'utf8') + '\n' + readFileSync(join(root, 'console/style.css'), 'utf8'),
  );
  writeFileSync(join(outDir, 'index.html'), CONSOLE_PAGE);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildConsole(join(root, 'dist/console'));
}
