// Requests that arrive in one turn of the event loop ask their cells in one synchronous
// run, so cell messaging sends them as one batch (one signed frame) instead of one each.
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { once } from 'node:events'
import { createGateway, type Gateway } from '../../src/gateway/index.js'
import { TurnBatch } from '../../src/gateway/turn-batch.js'
import { waitFor } from '../support/wait.js'
import { FakeBackend } from './helpers.js'

describe('gateway: asks of one event-loop turn start together', () => {
  let gateway: Gateway | undefined
  const sockets: Socket[] = []

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy()
    await gateway?.stop()
  })

  it('starts the asks of requests that arrived together in one synchronous run', async () => {
    // like cell messaging's channel: the asks queued before the run ends share one flush
    let run = 0
    let flushScheduled = false
    const runs: number[] = []
    const backend = new FakeBackend().cell('shop', 'counter', 'get', () => {
      runs.push(run)
      if (!flushScheduled) {
        flushScheduled = true
        queueMicrotask(() => { flushScheduled = false; run++ })
      }
      return 1
    })
    gateway = createGateway({ backend }, { port: 0 })
    await gateway.start()
    gateway.setRoutes('shop', [{ method: 'GET', path: '/count', cell: 'counter', cellMethod: 'get' }])
    const { port } = new URL(gateway.address())

    const count = 16
    const answers: string[] = Array.from({ length: count }, () => '')
    for (let i = 0; i < count; i++) {
      const socket = connect(Number(port), '127.0.0.1')
      socket.setEncoding('utf8')
      socket.on('data', (chunk: string) => { answers[i] += chunk })
      sockets.push(socket)
    }
    await Promise.all(sockets.map(async s => await once(s, 'connect')))
    const request = 'GET /shop/count HTTP/1.1\r\nhost: x\r\n\r\n'
    const answered = (times: number): boolean => answers.every(a => a.split('HTTP/1.1 200').length - 1 === times && a.endsWith('\r\n\r\n1'))
    // one request per connection first, so the gateway has accepted every connection
    for (const s of sockets) s.write(request)
    await waitFor(() => answered(1), { what: 'every first answer' })
    runs.length = 0
    // then every second request is in the kernel before the gateway's event loop runs again
    for (const s of sockets) s.write(request)
    await waitFor(() => answered(2), { what: 'every second answer' })
    assert.equal(runs.length, count)
    assert.ok(new Set(runs).size <= 2, `asks started in ${new Set(runs).size} separate runs: ${runs.join(',')}`)
  })

  it('TurnBatch resolves every waiter of a turn together, and a later waiter in a later turn', async () => {
    const turn = new TurnBatch()
    const order: string[] = []
    const first = Promise.all([turn.wait().then(() => order.push('a')), turn.wait().then(() => order.push('b'))])
    setImmediate(() => order.push('immediate queued after'))
    await first
    assert.deepEqual(order.slice(0, 2), ['a', 'b'])
    await turn.wait()
    assert.ok(order.includes('immediate queued after'), 'a wait after the first turn is a new turn')
  })
})
