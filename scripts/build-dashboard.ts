// `npm run build` step: bundles the dashboard page (src/dashboard/client, Preact) with
// esbuild into dist/dashboard/app.js and app.css, served by every node (no CDN).
import { build } from 'esbuild'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

await build({
  entryPoints: { app: join(root, 'src/dashboard/client/main.tsx') },
  outdir: join(root, 'dist/dashboard'),
  bundle: true,
  format: 'esm',
  target: ['es2022'],
  platform: 'browser',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning'
})
