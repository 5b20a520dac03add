// The dashboard's browser files, built by scripts/build-dashboard.ts into dist/dashboard/
// (esbuild bundles src/dashboard/client into one app.js and one app.css): no CDN, no
// external fonts, everything served by the node itself.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface DashboardAssets {
  js: Buffer
  css: Buffer
}

/** dist/dashboard, seen from this module compiled at dist/src/dashboard/assets.js */
export const defaultAssetDir = fileURLToPath(new URL('../../dashboard/', import.meta.url))

/** Reads the built files once; throws a one-line error if they are missing. */
export function loadDashboardAssets (dir: string = defaultAssetDir): DashboardAssets {
  try {
    return { js: readFileSync(join(dir, 'app.js')), css: readFileSync(join(dir, 'app.css')) }
  } catch (err) {
    throw new Error(`dashboard assets missing in ${dir} (run npm run build): ${(err as Error).message}`)
  }
}

export function dashboardHtml (title: string): string {
  const safe = title.replace(/[&<>"']/g, c => `&#${c.charCodeAt(0)};`)
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${safe}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard/app.css">
<script type="module" src="/dashboard/app.js"></script>
</head>
<body>
<div id="root"><p class="boot">Loading the mesh…</p></div>
<noscript>The Stem dashboard needs JavaScript. The same data is at <a href="/dashboard/state">/dashboard/state</a>.</noscript>
</body>
</html>
`
}
