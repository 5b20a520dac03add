// The cells layer's public API (SPEC §4): what the messaging and topology layers call.
//
//   const runtime = createCellRuntime({ dataDir, router?, bounds?, log?, replyGate? }); runtime.start()
//
//   // bundles: build (esbuild) + sign, ship encoded, verify against the app owner
//   const bundle = await buildBundle({ entry: 'counter.js', app: 'shop', cell: 'counter', limits, owner: ownerKey })
//   const bytes = encodeBundle(bundle); const received = decodeBundle(bytes); await verifyBundle(received, ownerPublicKey)
//
//   // lifecycle: stem → transformed → reverted → transformed …
//   runtime.createStem('shop/counter#0')                        // a blank cell (optional: transform creates it)
//   await runtime.transform('shop/counter#0', bundle, { owner, limits?, state?, version?, replace? })
//   await runtime.revert('shop/counter#0')
//
//   // messages: JSON-like arguments and results; `app/cell` picks a replica
//   await runtime.ask('shop/counter#0', 'increment', [2], { deadline?, signal? })
//   runtime.tell('shop/counter', 'increment', [1])
//   await runtime.askJson(address, method, '[2]', options)    // JSON text in and out (routers)
//
//   // state: snapshots for warm clones, persisted copies for node restarts
//   runtime.addEventListener('cell:snapshot', e => e.detail)    // { address, hash, state (JSON text), version }
//   await runtime.snapshot(address); await runtime.loadState(address)
//
//   // supervision: 'cell:started' | 'cell:crashed' | 'cell:restarted' | 'cell:failed' | 'cell:reverted'
//   //              'cell:log' | 'cell:error' | 'host:crashed' | 'host:restarted'  (see events.ts)
//   // errors a method threw reject with a CellError { message, cellError: { cell, method, status?, stack? } };
//   // reply texts may carry a trailer (stem.response's status and headers): see reply-meta.ts
//   runtime.cells(); runtime.cell(address); runtime.reservedMemory(); runtime.hostPids()
//
//   // reminders (stem.schedule): kept in the state text (reminders.ts), fired by the runtime
//   // while the cell is transformed here; nothing to call
//
//   runtime.setRouter(meshRouter)   // asks from cells to addresses outside their cell host
//   await runtime.stop()
//
// Cell code never runs in the node's process: each app's cells live in one cell host
// (a child process) supervised by the runtime.
export { createCellRuntime, CellRuntime, NO_ROOM } from './runtime.js'
export type { CellRuntimeInit, AdmissionRequest, AdmittedCell, TransformOptions, AskOptions, CellInfo, CellSnapshot } from './runtime.js'
export type { CellRouter, RouteOptions } from './router.js'
export type { CellRuntimeEvents, CellStatus, CellEventDetail, CellErrorDetail, CellSnapshotDetail, CellHostEventDetail } from './events.js'
export { CellError, splitReply, errorFromReply, replyOfError } from './reply-meta.js'
export type { CellErrorInfo, ResponseMeta, ReplyTrailer } from './reply-meta.js'
export { signBundle, encodeBundle, decodeBundle, verifyBundle, MAX_BUNDLE_BYTES } from './bundle.js'
export type { CellBundle, BundleInit } from './bundle.js'
export { buildBundle, bundleCode } from './bundle-build.js'
export type { BuildBundleOptions } from './bundle-build.js'
export { DEFAULT_LIMITS, DEFAULT_BOUNDS, checkLimits } from './limits.js'
export type { CellLimits, RuntimeBounds } from './limits.js'
export { parseAddress } from './address.js'
export type { CellAddress } from './address.js'
export type { JsonValue } from './json.js'
