// Entry point of a cell host process, forked by the node with --no-node-snapshot and an
// IPC channel (serialization 'advanced').
// It exits by itself when its node is gone: IPC disconnect, or its parent pid changes.
import { CellHost } from './cell-host.js'
import { Batcher } from './batcher.js'
import type { FromHost, ToHost } from './protocol.js'

if (process.send === undefined) {
  process.stderr.write('stem cell host: must be started by a node with an IPC channel\n')
  process.exit(2)
}

const parentPid = process.ppid
const outbox: Batcher<FromHost> = new Batcher<FromHost>(batch => {
  if (process.connected) process.send?.(batch)
}, () => host.takeChangedState())
const host: CellHost = new CellHost(message => { outbox.push(message) }, () => { outbox.schedule() })

process.on('message', (batch: ToHost[]) => {
  if (!Array.isArray(batch)) return
  for (const message of batch) host.handle(message)
})
process.on('disconnect', () => { process.exit(0) })
const orphanCheck = setInterval(() => {
  if (process.ppid !== parentPid) process.exit(0)
}, 1000)
orphanCheck.unref()

outbox.push({ t: 'ready' })
