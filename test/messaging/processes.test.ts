import { describe, it, before, after } from 'mocha'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { createInterface } from 'node:readline'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { multiaddr } from '@multiformats/multiaddr'
import { createStaticDirectory } from '../../src/messaging/directory.js'
import { connect } from '../../src/messaging/sdk.js'
import { waitFor } from '../support/wait.js'
import { COUNTER, createBundler } from '../cells/helpers.js'
import type { Bundler } from '../cells/helpers.js'
import { createTestNode, MESH } from './helpers.js'
import type { TestNode } from './helpers.js'

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'node-process.js')

interface Counter { increment: (by?: number) => number, get: () => number, both: (other: string) => Promise<number> }

describe('messaging: between node processes', function () {
  let b: Bundler
  let local: TestNode
  let child: ChildProcessWithoutNullStreams
  const lines: string[] = []

  before(async function () {
    this.timeout(60_000)
    b = await createBundler()
    const directory = createStaticDirectory()
    local = await createTestNode(directory)
    await local.runtime.transform('shop/here#0', await b.bundle('shop/here', COUNTER), { owner: b.owner.publicKey })
    directory.set('shop/here#0', local.id)
    child = spawn(process.execPath, ['--no-node-snapshot', FIXTURE, MESH], { stdio: 'pipe' })
    createInterface({ input: child.stdout }).on('line', line => { lines.push(line) })
    const ready = await waitFor(() => lines.find(l => l.includes('"addr"')), { timeout: 40_000, what: 'the node process to start' })
    const { id, addr } = JSON.parse(ready) as { id: string, addr: string }
    directory.set('shop/remote#0', id)
    await local.libp2p.dial(multiaddr(addr))
    child.stdin.write(JSON.stringify({ address: 'shop/here#0', peer: local.id }) + '\n')
    await waitFor(() => lines.some(l => l.includes('"set"')), { what: 'the directory entry to be set' })
  })
  after(async () => {
    if (child !== undefined && child.exitCode === null) {
      const exited = new Promise(resolve => child.once('exit', resolve))
      child.stdin.end()
      await exited
    }
    await local?.stop()
    b?.dir.remove()
  })

  it('asks and tells a cell in another node process, whose cell asks back', async () => {
    const remote = connect(local.messaging).cell<Counter>('shop/remote#0')
    assert.equal(await remote.increment(2), 2)
    local.messaging.tell('shop/remote#0', 'increment', [3])
    await waitFor(async () => await remote.get() === 5, { what: 'the tell' })
    await local.runtime.ask('shop/here#0', 'increment', [10])
    // the child's cell asks the cell in this process
    assert.equal(await remote.both('shop/here#0'), 15)
    // and a cell here asks the child's cell
    assert.equal(await local.messaging.ask('shop/here#0', 'both', ['shop/remote#0']), 15)
  })
})
