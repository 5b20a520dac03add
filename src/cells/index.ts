// The cells layer's public API (SPEC §4): what the messaging and topology layers call.
//
//   const runtime = createCellRuntime({ dataDir, router?, bounds?, log? }); runtime.start()
//   const bundle = await buildBundle({ entry: 'counter.js', app: 'shop', cell: 'counter', limits, owner: ownerKey })
//   const wire = encodeBundle(bundle); const again = decodeBundle(wire); await verifyBundle(again, ownerPublicKey)
//   await runtime.transform('shop/counter#0', bundle, { owner, limits?, state?, version?, replace? })
//   await runtime.ask('shop/counter#0', 'increment', [2], { deadline?, signal? })   // → JSON value
//   runtime.tell('shop/counter', 'increment', [1])                                  // any replica
//   await runtime.snapshot(address); runtime.addEventListener('cell:snapshot', e => e.detail.state/version)
//   await runtime.revert(address); runtime.setRouter(meshRouter); await runtime.stop()
//
// Cell code never runs in the node's process: each app's cells live in one cell host
// (a child process) supervised by the runtime.
export { createCellRuntime, CellRuntime } from './runtime.js'
export type { CellRuntimeInit, TransformOptions, AskOptions, CellInfo, CellSnapshot } from './runtime.js'
export type { CellRouter, RouteOptions } from './router.js'
export type { CellRuntimeEvents, CellStatus, CellEventDetail, CellSnapshotDetail, CellHostEventDetail } from './events.js'
export { signBundle, encodeBundle, decodeBundle, verifyBundle, MAX_BUNDLE_BYTES } from './bundle.js'
export type { CellBundle, BundleInit } from './bundle.js'
export { buildBundle, bundleCode } from './bundle-build.js'
export type { BuildBundleOptions } from './bundle-build.js'
export { DEFAULT_LIMITS, DEFAULT_BOUNDS, checkLimits } from './limits.js'
export type { CellLimits, RuntimeBounds } from './limits.js'
export { parseAddress } from './address.js'
export type { CellAddress } from './address.js'
export type { JsonValue } from './json.js'
