// The HTTP gateway layer's public surface.
export { createGateway, type Gateway, type GatewayComponents, type GatewayInit, type PublicRoute } from './gateway.js'
export { validateRoutes, validateAppName, describeRoute, ROUTE_METHODS, MAX_ROUTE_TIMEOUT_MS, type GatewayRoute, type RouteMethod } from './routes.js'
export { BackendError, BackendErrorCode, classifyBackendError, type AskOptions, type CellTarget, type GatewayBackend, type BackendFailure } from './backend.js'
