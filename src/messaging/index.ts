// The messaging layer's public API (issue #5): asks and tells between cells on any node,
// code shipped as messages, and the typed client SDK.
//
//   const directory = createStaticDirectory({ 'shop/counter#0': alicePeerId })   // topology fills its own
//   const store = createBundleStore(join(dataDir, 'bundles'))
//   const bundles = createBundleExchange({ libp2p, store, signer }, { mesh })
//   const messaging = createCellMessaging({ libp2p, runtime, directory, signer, bundles }, { mesh })
//   await bundles.start(); await messaging.start()       // messaging plugs its router into the runtime
//   await messaging.ask('shop/counter', 'increment', [5])
//   await bundles.publish(bundle); await messaging.transformRemote(peer, { address, bundle: bundle.hash, owner })
//   const counter = connect(messaging).cell<Counter>('shop/counter'); await counter.increment(5)
export { createCellMessaging, CellMessaging } from './cell-messaging.js'
export type { CellMessagingComponents, CellMessagingInit, MessageOptions, RemoteTransformRequest } from './cell-messaging.js'
export type { CellMessagingEvents, CellMessagingCounters } from './events.js'
export { createStaticDirectory } from './directory.js'
export type { CellDirectory, CellLocation, StaticDirectory } from './directory.js'
export { createBundleStore } from './bundle-store.js'
export type { BundleStore } from './bundle-store.js'
export { createBundleExchange, BundleExchange, bundleCid } from './code-exchange.js'
export type { BundleExchangeComponents, BundleExchangeInit, BundleExchangeEvents, BundleExchangeCounters, FetchOptions } from './code-exchange.js'
export { MessagingError } from './errors.js'
export type { MessagingErrorCode } from './errors.js'
export { connect, newMessageId } from './sdk.js'
export type { CellCaller, CellClient, CallOptions, StemConnection, ConnectTarget } from './sdk.js'
export { createHttpCaller, callHandler } from './call-client.js'
export type { HttpCallerOptions, CallRequest, CallResponse } from './call-client.js'
export { DedupeWindow } from './dedupe.js'
export type { DedupeWindowOptions } from './dedupe.js'
