// libp2p's own metrics (connections, streams, bytes per protocol, DHT, gossipsub) in the
// same registry as Stem's: pass the result as the `metrics` option of createLibp2p.
//
// @libp2p/prometheus-metrics keeps a module-wide name → metric map and, when a node is
// created, clears it (and prom-client's global default registry, which Stem does not
// use), so each node registers fresh metrics into its own registry; several nodes in one
// process each get theirs. Default process metrics are left to createStemMetrics.
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import type { StemMetrics } from './stem-metrics.js'

export function libp2pMetrics (metrics: StemMetrics): ReturnType<typeof prometheusMetrics> {
  return prometheusMetrics({ registry: metrics.registry, collectDefaultMetrics: false, preserveExistingMetrics: false })
}
