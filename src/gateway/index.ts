// The HTTP gateway layer's public surface.
//
// Wiring (node layer): `createGateway({ backend, logger }, { host, port })`, then `start()`.
// - backend.ask → messaging's ask to `app/cell#instance`, passing `signal` (abort it),
//   `messageId` (dedupe key, the same on every retry) and `deadline`; reject with an error
//   whose `code` is CELL_UNAVAILABLE (cell moving/failing over/not placed) or
//   CELL_OVERLOADED (mailbox full) for failures that are not the cell's own.
// - backend.replicas → topology's current replica count for `app/cell`.
// - topology calls `validateRoutes(app, routes)` before publishing a manifest, then
//   `setRoutes(app, routes)` when the app is published or updated and `removeApp(app)`
//   when it is reverted; each manifest route maps to a GatewayRoute with `timeoutMs` set
//   from the cell's `timeout` limit plus a margin for the mesh round trip.
export { createGateway, type Gateway, type GatewayComponents, type GatewayInit, type PublicRoute } from './gateway.js'
export { validateRoutes, validateAppName, describeRoute, ROUTE_METHODS, MAX_ROUTE_TIMEOUT_MS, type GatewayRoute, type RouteMethod } from './routes.js'
export { BackendError, BackendErrorCode, CellResponse, cellFailureOf, replyValue, classifyBackendError, type CellFailure, type AskOptions, type CellTarget, type GatewayBackend, type BackendFailure } from './backend.js'
