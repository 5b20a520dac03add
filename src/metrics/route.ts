// GET /metrics on the node's control API: read-only and public like the dashboard, so a
// Prometheus server can scrape it without the API token.
import type { FastifyInstance } from 'fastify'
import { publicRouteConfig } from '../util/public-route.js'
import type { StemMetrics } from './stem-metrics.js'

export function registerMetricsRoute (fastify: FastifyInstance, metrics: StemMetrics): void {
  fastify.get('/metrics', { config: publicRouteConfig }, async (request, reply) => {
    const text = await metrics.render()
    return await reply.header('cache-control', 'no-store').type(metrics.contentType).send(text)
  })
}
