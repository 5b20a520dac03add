// The mesh's STUN responder against the library's own client, and against datagrams that
// are not STUN: garbage, truncated and oversized ones get no answer and change nothing.
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import stun from '@msimerson/stun'
import { createStunResponder } from '../../src/mesh/stun-server.js'

async function freeUdpPort (): Promise<number> {
  const s = createSocket('udp4')
  await new Promise<void>(resolve => { s.bind(0, '127.0.0.1', resolve) })
  const port = s.address().port
  await new Promise<void>(resolve => { s.close(() => { resolve() }) })
  return port
}

describe('mesh: STUN responder', function () {
  this.timeout(20_000)

  it('answers a binding request with the address it came from, after malformed datagrams', async () => {
    const port = await freeUdpPort()
    const responder = createStunResponder({ port, host: '127.0.0.1' })
    await responder.start()
    try {
      const junk = createSocket('udp4')
      const valid = Buffer.from('000100002112a442000102030405060708090a0b', 'hex')
      const datagrams = [
        Buffer.from('hello'),
        valid.subarray(0, 12), // truncated header
        Buffer.concat([valid.subarray(0, 2), Buffer.from('0400', 'hex'), valid.subarray(4)]), // length says 1024, body is empty
        Buffer.alloc(60_000, 0xff), // oversized garbage
        Buffer.from('000100002112a443000102030405060708090a0b', 'hex') // wrong magic cookie
      ]
      const answers: Buffer[] = []
      junk.on('message', msg => { answers.push(msg) })
      await new Promise<void>(resolve => { junk.bind(0, '127.0.0.1', resolve) })
      for (const d of datagrams) await new Promise<void>((resolve, reject) => { junk.send(d, port, '127.0.0.1', err => { if (err != null) reject(err); else resolve() }) })

      // the library's client: a real binding request and response
      const client = createSocket('udp4')
      await new Promise<void>(resolve => { client.bind(0, '127.0.0.1', resolve) })
      const response = await stun.request(`127.0.0.1:${port}`, { socket: client, retries: 3, timeout: 1000 })
      assert.deepEqual(response.getXorAddress(), { address: '127.0.0.1', port: client.address().port, family: 'IPv4' })
      // the junk sent before the request got no answer
      assert.deepEqual(answers, [])
      junk.close()
    } finally {
      responder.stop()
    }
  })

  it('a taken port is an error of start, not a crash', async () => {
    const port = await freeUdpPort()
    const first = createStunResponder({ port, host: '127.0.0.1' })
    await first.start()
    try {
      await assert.rejects(createStunResponder({ port, host: '127.0.0.1' }).start(), /EADDRINUSE/)
    } finally {
      first.stop()
    }
  })
})
