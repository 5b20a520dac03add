// The control API's app routes (SPEC §6): publish, owner commands (scale, revert),
// listings, and POST /v1/call for `stem call` and the HTTP SDK.
import type { FastifyInstance } from 'fastify'
import { callHandler } from '../messaging/call-client.js'
import type { CellCaller } from '../messaging/sdk.js'
import type { TopologyService } from '../topology/service.js'
import type { AppCellsListing } from '../topology/app-table.js'

/** POST /v1/publish body: the owner-signed request and the encoded bundles (base64) */
export interface PublishBody {
  signed: unknown
  bundles: string[]
}

const MAX_BUNDLES = 64
/** the manifest and its bundles, base64 */
const MAX_PUBLISH_BYTES = 64 * 1024 * 1024

/** `overlay`: the listing with each instance's condition (failed, why, since when) from the node that runs it */
export function registerAppRoutes (app: FastifyInstance, topology: TopologyService, caller: CellCaller, overlay: (apps: AppCellsListing[]) => AppCellsListing[] = apps => apps): void {
  app.post<{ Body: PublishBody }>('/v1/publish', { bodyLimit: MAX_PUBLISH_BYTES }, async (request, reply) => {
    const body = request.body
    if (body === null || typeof body !== 'object' || !Array.isArray(body.bundles) || body.bundles.length > MAX_BUNDLES || !body.bundles.every(b => typeof b === 'string')) {
      return await reply.code(400).send({ error: `body must be { signed, bundles: [base64…] } with at most ${MAX_BUNDLES} bundles` })
    }
    try {
      return await topology.publish(body.signed, body.bundles.map(b => Buffer.from(b, 'base64')))
    } catch (err) {
      return await reply.code(400).send({ error: (err as Error).message.split('\n')[0] })
    }
  })

  app.post<{ Body: { signed: unknown } }>('/v1/owner', async (request, reply) => {
    try {
      return await topology.ownerCommand(request.body?.signed)
    } catch (err) {
      return await reply.code(400).send({ error: (err as Error).message.split('\n')[0] })
    }
  })

  app.get('/v1/apps', async () => topology.table.listApps())

  app.get<{ Querystring: { app?: string } }>('/v1/cells', async (request, reply) => {
    const name = request.query.app
    if (name !== undefined && topology.table.get(name) === undefined) return await reply.code(404).send({ error: `no app named ${name}` })
    return overlay(topology.table.listCells(name))
  })

  app.post('/v1/call', { bodyLimit: 1024 * 1024 }, async (request, reply) => {
    const answer = await callHandler(caller, request.body)
    return await reply.code(answer.status).send(answer.body)
  })
}
