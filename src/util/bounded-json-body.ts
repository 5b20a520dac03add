// Fastify's JSON body parser behind the bounded-JSON gate: a body nested deeper than
// MAX_JSON_DEPTH is a 400 naming the limit before it is parsed (it would otherwise parse,
// then overflow the stack of the walks after it: a 500 `Maximum call stack size exceeded`).
import type { FastifyInstance, ProtoAction } from 'fastify'
import { jsonBoundsError } from './bounded-json.js'

export function useBoundedJsonBodies (app: FastifyInstance, poisoning: ProtoAction = 'error'): void {
  const parse = app.getDefaultJsonParser(poisoning, poisoning)
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const reason = jsonBoundsError(body as string, 'JSON body')
    if (reason !== undefined) {
      done(Object.assign(new Error(reason), { statusCode: 400 }), undefined)
      return
    }
    parse(request, body as string, done)
  })
}
