// Metrics of a Stem node (Prometheus format, prom-client):
//   const metrics = createStemMetrics()
//   const node = await createLibp2p({ ..., metrics: libp2pMetrics(metrics) })
//   metrics.addSource(() => { for (const [state, n] of countCells()) metrics.cellStates.set({ state }, n) })
//   registerMetricsRoute(fastify, metrics)   // GET /metrics
export { createStemMetrics } from './stem-metrics.js'
export type { StemMetrics, StemMetricsInit, Direction, Resource } from './stem-metrics.js'
export { registerMetricsRoute } from './route.js'
export { libp2pMetrics } from './libp2p.js'
