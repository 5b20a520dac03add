// Entry point of a cell host process, spawned by the node with --no-node-snapshot, the
// frame limit as its argument and its link to the node on fd 3 (link.ts).
// It exits by itself when its node is gone: the link ends, or its parent pid changes.
import { fstatSync } from 'node:fs'
import { Socket } from 'node:net'
import { CellHost } from './cell-host.js'
import { Batcher } from './batcher.js'
import { encodeFrames, FrameDecoder } from './link.js'
import { hostExternalStrings } from './external-strings.js'
import type { FromHost, ToHost } from './protocol.js'

const LINK_FD = 3

function fail (why: string): never {
  process.stderr.write(`stem cell host: ${why}\n`)
  process.exit(2)
}

const frameLimit = Number(process.argv[2])
if (!Number.isSafeInteger(frameLimit) || frameLimit < 1024) fail('must be started by a node (expected the frame limit as its argument)')
let isSocket = false
try { isSocket = fstatSync(LINK_FD).isSocket() } catch {}
if (!isSocket) fail(`must be started by a node with its link on fd ${LINK_FD}`)
const link = new Socket({ fd: LINK_FD, readable: true, writable: true })

const parentPid = process.ppid
const outbox: Batcher<FromHost> = new Batcher<FromHost>(batch => {
  for (const frame of encodeFrames(batch, frameLimit)) link.write(frame)
}, () => host.takeChangedState())
const host: CellHost = new CellHost(message => { outbox.push(message) }, () => { outbox.schedule() }, hostExternalStrings())

const decoder = new FrameDecoder<ToHost>(frameLimit, batch => { for (const message of batch) host.handle(message) })
link.on('data', (chunk: Buffer) => {
  try {
    decoder.push(chunk)
  } catch (err) {
    fail((err as Error).message)
  }
})
// the node is gone (or closed the link): nothing is left to serve
link.on('end', () => { process.exit(0) })
link.on('error', () => { process.exit(0) })
const orphanCheck = setInterval(() => {
  if (process.ppid !== parentPid) process.exit(0)
}, 1000)
orphanCheck.unref()

outbox.push({ t: 'ready' })
