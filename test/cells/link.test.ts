// The node ↔ cell host link (src/cells/host/link.ts): length-prefixed frames over a socket
// pair. The decoder against malformed, truncated, oversized and forged input; the node
// against a real host process that sends such frames (it is killed with a one-line
// reason, the node goes on); a real host fed garbage by its node (it exits, saying why).
import { describe, it, afterEach } from 'mocha'
import assert from 'node:assert/strict'
import type { Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { encodeFrames, FrameDecoder, LinkError } from '../../src/cells/host/link.js'
import type { LinkMessage } from '../../src/cells/host/link.js'
import { fromHostError } from '../../src/cells/host/protocol-check.js'
import { Batcher } from '../../src/cells/host/batcher.js'
import { CellHostProcess } from '../../src/cells/cell-host-process.js'
import { DEFAULT_BOUNDS } from '../../src/cells/limits.js'
import { waitFor } from '../support/wait.js'
import { processGone } from './helpers.js'

const LIMIT = 1 << 20
const header = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(n, 0); return b }
const frameOf = (payload: string): Buffer => Buffer.concat([header(Buffer.byteLength(payload)), Buffer.from(payload)])

function decoder (limit = LIMIT): { batches: LinkMessage[][], d: FrameDecoder<LinkMessage> } {
  const batches: LinkMessage[][] = []
  return { batches, d: new FrameDecoder<LinkMessage>(limit, batch => { batches.push(batch) }) }
}

describe('cells: the cell host link', () => {
  describe('frames', () => {
    const sample: LinkMessage[][] = [
      [{ t: 'ready' }],
      [{ t: 'state', address: 'a/b#0', state: '{"s":"é\\u0000✓"}', version: 3 } as LinkMessage, { t: 'reply', id: 7, ok: true, text: '"\u2028 \ud83d"' } as LinkMessage],
      [{ t: 'log', address: 'a/b#0', text: 'x'.repeat(70_000) } as LinkMessage]
    ]
    const bytes = Buffer.concat(sample.flatMap(batch => encodeFrames(batch, LIMIT)))

    it('carries batches whole, however the stream cuts the bytes', () => {
      for (const cut of [1, 2, 3, 4, 5, 13, 4096, bytes.byteLength]) {
        const { batches, d } = decoder()
        for (let at = 0; at < bytes.byteLength; at += cut) d.push(bytes.subarray(at, at + cut))
        d.end()
        assert.deepEqual(batches, sample, `chunks of ${cut} bytes`)
        assert.equal(d.buffered, 0)
      }
    })

    it('refuses an oversized frame from its header, before its payload arrives', () => {
      const { batches, d } = decoder()
      assert.throws(() => { d.push(header(LIMIT)) }, (err: Error) => err instanceof LinkError && /^an oversized frame on the cell host link: 1048576 bytes, limit 1048572$/.test(err.message))
      assert.equal(batches.length, 0)
      // split header: refused once its fourth byte is in
      const split = decoder()
      split.d.push(header(0xffffffff).subarray(0, 2))
      assert.throws(() => { split.d.push(header(0xffffffff).subarray(2)) }, /oversized frame/)
    })

    it('refuses malformed payloads with a one-line reason', () => {
      for (const [payload, reason] of [
        ['nope!', /^a malformed frame on the cell host link: Unexpected token/],
        ['', /^a malformed frame on the cell host link: Unexpected end of JSON input$/],
        ['{"t":"ready"}', /not an array of messages$/],
        ['[1]', /a message without a type$/],
        ['[null]', /a message without a type$/],
        ['[{"t":5}]', /a message without a type$/],
        ['['.repeat(100_000), /^a malformed frame on the cell host link: /]
      ] as const) {
        const { batches, d } = decoder()
        assert.throws(() => { d.push(frameOf(payload)) }, (err: Error) => err instanceof LinkError && reason.test(err.message) && !err.message.includes('\n'), payload.slice(0, 20))
        assert.equal(batches.length, 0)
      }
    })

    it('says so when the link ends inside a frame', () => {
      const whole = encodeFrames([{ t: 'ready' }], LIMIT)[0]
      const { batches, d } = decoder()
      d.push(Buffer.concat([whole, whole.subarray(0, 6)]))
      assert.equal(batches.length, 1)
      assert.throws(() => { d.end() }, (err: Error) => err instanceof LinkError && err.message === 'the cell host link ended inside a frame (6 of 19 bytes)')
      const short = decoder()
      short.d.push(whole.subarray(0, 2))
      assert.throws(() => { short.d.end() }, /ended inside a frame \(2 of 4 bytes\)/)
    })

    it('splits a batch over the frame limit, and refuses one message that cannot fit', () => {
      const big = Array.from({ length: 8 }, (_, i) => ({ t: 'log', address: 'a/b#0', text: String(i).repeat(300) }))
      const frames = encodeFrames(big, 1024)
      assert.ok(frames.length > 1 && frames.every(f => f.byteLength <= 1024))
      const { batches, d } = decoder(1024)
      for (const f of frames) d.push(f)
      assert.deepEqual(batches.flat(), big)
      assert.throws(() => encodeFrames([{ t: 'log', text: 'x'.repeat(2000) } as LinkMessage], 1024), (err: Error) => err instanceof LinkError && /^a 'log' message of \d+ bytes does not fit the cell host link \(limit 1024 bytes\)$/.test(err.message))
    })

    it('the node checks the fields of every message a host sends', () => {
      assert.equal(fromHostError({ t: 'reply', id: 1, ok: true, text: 'x' } as LinkMessage), undefined)
      assert.equal(fromHostError({ t: 'event', address: 'a/b#0', kind: 'crashed', reason: 'r' } as LinkMessage), undefined)
      assert.equal(fromHostError({ t: 'reply', id: 1, ok: true, text: 42 } as unknown as LinkMessage), "a 'reply' message whose text is not a string")
      assert.equal(fromHostError({ t: 'state', address: 'a/b#0', state: '{}' } as LinkMessage), "a 'state' message whose version is not a number")
      assert.equal(fromHostError({ t: 'event', address: 'a/b#0', kind: 'exploded', reason: 'r' } as LinkMessage), "an 'event' message of an unknown kind")
      assert.equal(fromHostError({ t: 'toString' }), 'an unknown message type "toString"')
      assert.equal(fromHostError({ t: 'call' }), 'an unknown message type "call"')
    })
  })

  describe('batching', () => {
    it('a message pushed after a state change was scheduled leaves at once, the state first', () => {
      const sent: string[][] = []
      let state: string[] = []
      const batcher = new Batcher<string>(batch => { sent.push(batch) }, () => state.splice(0))
      // the first message of the turn leaves at once
      batcher.push('reply 1')
      assert.deepEqual(sent, [['reply 1']])
      return new Promise<void>(resolve => {
        setImmediate(() => {
          // a new turn: a state change wakes the batcher for the end of the turn...
          state = ['state 2']
          batcher.schedule()
          // ...and the reply that follows it does not wait for that
          batcher.push('reply 2')
          assert.deepEqual(sent, [['reply 1'], ['state 2', 'reply 2']])
          // the rest of the turn's messages leave together at its end
          batcher.push('reply 3')
          batcher.push('reply 4')
          assert.equal(sent.length, 2)
          setImmediate(() => {
            assert.deepEqual(sent, [['reply 1'], ['state 2', 'reply 2'], ['reply 3', 'reply 4']])
            resolve()
          })
        })
      })
    })
  })

  describe('processes', () => {
    const hosts: CellHostProcess[] = []
    afterEach(() => {
      for (const h of hosts.splice(0)) h.kill('test over')
      delete process.env.STEM_TEST_HOSTILE
    })

    function start (entry?: string): { host: CellHostProcess, exit: Promise<string>, stderr: () => string } {
      let stderr = ''
      const { promise: exit, resolve } = Promise.withResolvers<string>()
      const host = new CellHostProcess({
        app: 'link',
        entry,
        bounds: DEFAULT_BOUNDS,
        localAsks: true,
        heartbeatInterval: 60_000,
        heartbeatTimeout: () => 60_000,
        rssLimit: () => 1 << 30,
        onMessage: () => {},
        onExit: resolve,
        onStderr: text => { stderr += text }
      })
      hosts.push(host)
      return { host, exit, stderr: () => stderr }
    }

    const hostile = fileURLToPath(new URL('./fixtures/hostile-host.js', import.meta.url))
    for (const [mode, reason] of [
      ['oversized', /^broke its link: an oversized frame on the cell host link: 4294967280 bytes, limit \d+$/],
      ['malformed', /^broke its link: a malformed frame on the cell host link: Unexpected token/],
      ['not-a-batch', /^broke its link: a malformed frame on the cell host link: not an array of messages$/],
      ['forged', /^broke its link: a 'reply' message whose text is not a string$/],
      ['truncated', /^broke its link: the cell host link ended inside a frame \(14 of 104 bytes\)$/]
    ] as const) {
      const what = mode === 'forged' ? 'a forged message' : `${mode === 'oversized' ? 'an' : 'a'} ${mode} frame`
      it(`a host that sends ${what} is killed with a one-line reason`, async () => {
        process.env.STEM_TEST_HOSTILE = mode
        const { host, exit } = start(hostile)
        const why = await exit
        assert.match(why, reason)
        assert.ok(!why.includes('\n'))
        assert.equal(host.alive, false)
        assert.equal(processGone(host.pid as number), true)
      })
    }

    it('a real host fed a bad frame by its node exits, saying why on one line', async () => {
      const { host, exit, stderr } = start()
      ;(host.child.stdio[3] as Socket).write(Buffer.concat([header(3), Buffer.from('{{{')]))
      assert.equal(await exit, 'exited with code 2')
      await waitFor(() => /^stem cell host: a malformed frame on the cell host link: .*\n$/.test(stderr()), { what: 'the host to say why' })
    })
  })
})
