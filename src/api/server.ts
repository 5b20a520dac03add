// The local control API: HTTP on loopback (fastify), for the CLI. Every request must carry
// `Authorization: Bearer <token>`, the token stored in the node's data dir (mode 0600),
// so only users who can read the data dir control the node. Higher layers add their own
// routes on `app` before `start()`.
import Fastify, { type FastifyInstance } from 'fastify'
import { timingSafeEqual } from 'node:crypto'
import type { ContributeRequest, NodeControl } from './types.js'
import '../util/public-route.js'
import { useBoundedJsonBodies } from '../util/bounded-json-body.js'

export interface ApiServerInit {
  host: string
  /** 0 picks a free port */
  port: number
  token: string
  /** where the token lives, for the 401 message */
  tokenPath?: string
}

export interface ApiServer {
  readonly app: FastifyInstance
  start: () => Promise<string>
  stop: () => Promise<void>
  /** http://host:port once started */
  url: () => string
}

export function createApiServer (control: NodeControl, init: ApiServerInit): ApiServer {
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 })
  useBoundedJsonBodies(app)
  const expected = Buffer.from(`Bearer ${init.token}`)
  let url = ''

  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.config?.public === true) return
    const given = Buffer.from(request.headers.authorization ?? '')
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      await reply.code(401).send({ error: `missing or wrong API token (the token is in ${init.tokenPath ?? 'the node\'s data dir'})` })
    }
  })

  app.setErrorHandler(async (err: Error & { statusCode?: number }, _request, reply) => {
    const code = err.statusCode != null && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500
    await reply.code(code).send({ error: err.message.split('\n')[0] })
  })

  app.get('/v1/status', async () => control.status())
  app.get('/v1/peers', async () => control.peers())
  app.get('/v1/invite', async () => control.invite())
  app.post<{ Body: ContributeRequest }>('/v1/contribute', {
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        properties: { cpu: { type: 'number', minimum: 0 }, memory: { type: 'integer', minimum: 0 }, cells: { type: 'integer', minimum: 0 } }
      }
    }
  }, async (request, reply) => {
    try {
      return await control.contribute(request.body ?? {})
    } catch (err) {
      return await reply.code(400).send({ error: (err as Error).message })
    }
  })

  return {
    app,
    url: () => url,
    async start () {
      try {
        await app.listen({ host: init.host, port: init.port })
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        const why = code === 'EADDRINUSE' ? 'address already in use' : (err as Error).message
        throw new Error(`cannot start the control API on ${init.host}:${init.port}: ${why} (choose another with --api HOST:PORT)`)
      }
      const address = app.server.address()
      if (address == null || typeof address === 'string') throw new Error('the control API has no TCP address')
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
      url = `http://${host}:${address.port}`
      return url
    },
    async stop () {
      await app.close()
    }
  }
}
