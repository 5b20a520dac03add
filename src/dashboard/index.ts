// The dashboard's public API, mounted by the control API server with one call:
//   const feed = createDashboardFeed({ self, nodes, apps, cells })   // or any DashboardSource
//   registerDashboard(fastify, { source: feed })
//   feed.record('peer-lost', 'node 12D3…x9 lost'); feed.changed('nodes')
export { registerDashboard } from './register.js'
export type { DashboardOptions, DashboardHandle } from './register.js'
export { createDashboardFeed } from './feed.js'
export type { DashboardFeed, DashboardFeedInit } from './feed.js'
export { createRateMeter } from './rate-meter.js'
export type { RateMeter, RateMeterInit } from './rate-meter.js'
export type * from './types.js'
export { snapshotParts } from './types.js'
