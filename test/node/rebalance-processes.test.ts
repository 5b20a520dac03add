// Shards move when a node joins (issue 18), with real `stem` processes: 2 nodes run a keyed
// counter of 200 keys while adds run without pause; a 3rd node joins and the app's leader
// hands it shards (the old primary stops serving, the new one takes over from the state its
// clone holds, under a new epoch). Then every key's count equals the adds acknowledged to
// it (none lost, none doubled: each retry carries the id of its first try), and a key's
// activations never interleave (each answer carries the activation that served it: once a
// newer one answered, an older one never does).
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AppCellsListing } from '../../src/topology/app-table.js'
import { createHttpCaller } from '../../src/messaging/call-client.js'
import { newMessageId } from '../../src/messaging/sdk.js'
import type { CellCaller } from '../../src/messaging/sdk.js'
import { readToken } from '../../src/node/data-dir.js'
import { encodeKey } from '../../src/cells/address.js'
import { waitFor } from '../support/wait.js'
import { apiUrlOf, stemJson, printLogsIfFailed, stopAll } from '../support/stem-process.js'
import { joinMesh, startMesh, type MeshNode } from '../../scripts/support/stem-mesh.js'

const COUNTER = `
export default class Counter {
  adds = 0
  #activation = Math.random().toString(36).slice(2)
  add () { this.adds++; return { key: stem.key, adds: this.adds, activation: this.#activation } }
  get () { return { key: stem.key, adds: this.adds, activation: this.#activation } }
}
`
const SHARDS = 12
const MANIFEST = `app: tally
cells:
  counter:
    code: ./counter.js
    keyed: true
    replicas: ${SHARDS}
    clones: 1
`
const KEYS = Array.from({ length: 200 }, (_, i) => i % 9 === 0 ? `k/${i}#%` : `k-${i}`)
/** adds in flight at any time */
const WIDTH = 8

interface Answer { key: string, adds: number, activation: string }

interface Tally {
  answers: Map<string, Answer[]>
  /** tries that failed and were retried (same message id) */
  retries: number
  /** slowest add, ms, retries included */
  slowest: number
}

/** One add to `key`, retried through `caller` (same message id: it runs once) until answered. */
async function add (caller: CellCaller, key: string, tally: Tally): Promise<void> {
  const messageId = newMessageId()
  const started = Date.now()
  const answer = await waitFor(async () => {
    try {
      return await caller.ask(`tally/counter/${encodeKey(key)}`, 'add', [], { messageId, deadline: Date.now() + 10_000 }) as Answer
    } catch { tally.retries++; return undefined }
  }, { timeout: 180_000, interval: 100, what: `an add to ${key} to be answered` })
  tally.slowest = Math.max(tally.slowest, Date.now() - started)
  ;(tally.answers.get(key) as Answer[]).push(answer)
}

/** Adds to the keys in turn, `WIDTH` at a time, each through the next of `callers()`, until `stop()`; returns the rounds of keys done. */
async function drive (callers: () => CellCaller[], tally: Tally, stop: () => boolean): Promise<number> {
  let next = 0
  await Promise.all(Array.from({ length: WIDTH }, async () => {
    while (!stop()) {
      const i = next++
      const list = callers()
      await add(list[i % list.length], KEYS[i % KEYS.length], tally)
    }
  }))
  return Math.floor(next / KEYS.length)
}

async function shardsOf (node: MeshNode): Promise<AppCellsListing['cells']> {
  return (await stemJson<AppCellsListing[]>(['cells', 'tally', '--data', node.dataDir]))[0]?.cells ?? []
}

describe('shards rebalance when a node joins, with real stem processes', function () {
  this.timeout(900_000)
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stem-rebalance-'))
    await writeFile(join(dir, 'counter.js'), COUNTER)
    await writeFile(join(dir, 'app.yaml'), MANIFEST)
  })
  after(async () => { await rm(dir, { recursive: true, force: true }) })
  afterEach(printLogsIfFailed)
  afterEach(stopAll)

  it('a node joins and shards rebalance under load, with no lost or doubled add', async () => {
    const nodes = await startMesh(2)
    await stemJson(['publish', join(dir, 'app.yaml'), '--data', nodes[0].dataDir])
    await waitFor(async () => {
      const cells = await shardsOf(nodes[0])
      return cells.length === SHARDS && cells.every(c => c.state === 'transformed' && c.clones.length > 0)
    }, { timeout: 120_000, what: `the ${SHARDS} shards and their clones to be placed` })
    const callerOf = async (n: MeshNode): Promise<CellCaller> => createHttpCaller({ url: await apiUrlOf(n.dataDir), token: await readToken(n.dataDir) })
    const callers = await Promise.all(nodes.map(callerOf))
    const tally: Tally = { answers: new Map(KEYS.map(k => [k, []])), retries: 0, slowest: 0 }

    let stopping = false
    const driving = drive(() => callers, tally, () => stopping)
    await waitFor(async () => [...tally.answers.values()].every(a => a.length > 0) || undefined, { timeout: 180_000, what: 'every key to be added to once' })

    // a third node joins while the adds go on; once it is settled, the leader hands it shards
    const joinedAt = Date.now()
    const newcomer = await joinMesh(nodes)
    const newId = newcomer.process.peerId()
    callers.push(await callerOf(newcomer))
    const fair = Math.floor(SHARDS / 3)
    const balanced = await waitFor(async () => {
      const cells = await shardsOf(nodes[0])
      const held = cells.filter(c => c.node === newId && c.state === 'transformed').length
      return held >= fair && cells.every(c => c.state === 'transformed') && cells
    }, { timeout: 300_000, interval: 500, what: `the new node to run ${fair} of the ${SHARDS} shards` })
    const rebalanceMs = Date.now() - joinedAt
    const perNode = new Map<string, number>()
    for (const c of balanced) perNode.set(c.node, (perNode.get(c.node) ?? 0) + 1)
    assert.ok([...perNode.values()].every(n => n >= fair - 1 && n <= fair + 1), `shards per node: ${JSON.stringify([...perNode])}`)

    // more adds after the moves, then the adds stop
    const before = [...tally.answers.values()].reduce((n, a) => n + a.length, 0)
    await waitFor(async () => [...tally.answers.values()].reduce((n, a) => n + a.length, 0) >= before + KEYS.length || undefined, { timeout: 180_000, what: 'a round of adds after the rebalance' })
    stopping = true
    const rounds = await driving

    let moved = 0
    let total = 0
    for (const key of KEYS) {
      const list = (tally.answers.get(key) as Answer[]).sort((a, b) => a.adds - b.adds)
      total += list.length
      assert.deepEqual(list.map(a => a.adds), list.map((_, i) => i + 1), `${key}: every acknowledged add counted once`)
      const now = await waitFor(async () => {
        try { return await callers[2].ask(`tally/counter/${encodeKey(key)}`, 'get', [], { deadline: Date.now() + 10_000 }) as Answer } catch { return undefined }
      }, { timeout: 60_000, what: `the count of ${key}` })
      assert.equal(now.adds, list.length, `${key}: its count is the number of adds acknowledged`)
      // one activation at a time: a key's activations appear in one run each, in order
      const runs = [...list, now].map(a => a.activation).filter((a, i, all) => i === 0 || all[i - 1] !== a)
      assert.equal(new Set(runs).size, runs.length, `${key}: an older activation answered after a newer one: ${runs.join(', ')}`)
      if (runs.length > 1) moved++
    }
    assert.ok(moved > 0, 'some keys were activated again on another node')
    process.stdout.write(`      rebalance: ${rebalanceMs} ms from the join to ${fair} shards on the new node (${JSON.stringify([...perNode.values()])}); ` +
      `${total} adds in ${rounds} rounds, ${tally.retries} retried tries, slowest add ${tally.slowest} ms; ${moved} of ${KEYS.length} keys moved\n`)
  })
})
