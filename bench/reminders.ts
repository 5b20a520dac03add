// Reminders benchmark (issue 18): a 3-node mesh of real `stem` processes runs a cell with
// 20 replicas (durability disk, one clone each); each replica schedules 500 reminders,
// all due within one 10 s window, and records how late each fired (stem.now() − its due
// time, as a histogram in the cell's state: a list of 1,000 numbers would cost more per
// message than the reminders do). Beside it, in the same run, the same due times as plain
// setTimeout timers in this process: what the firing path (node timer → cell host →
// isolate → state fsynced and replicated) adds to a timer.
//   reminders   lateness p50/p99 of 10,000 reminders due within 10 s on 3 nodes
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { createHttpCaller } from '../src/messaging/call-client.js'
import { newMessageId } from '../src/messaging/sdk.js'
import { readToken } from '../src/node/data-dir.js'
import { apiUrlOf, stemJson, stopAll } from '../scripts/support/stem-process.js'
import { startMesh } from '../scripts/support/stem-mesh.js'
import { percentile } from './support/stats.js'

const INSTANCES = 20
const PER_INSTANCE = 500
const WINDOW_MS = 10_000
/** time for every instance to schedule its reminders before the first is due */
const LEAD_MS = 8000

const TIMER = `
export default class Timer {
  late = {}
  arm (n, from, window) { for (let i = 0; i < n; i++) stem.schedule(from + Math.floor(i * window / n), 'ring'); return stem.reminders().length }
  ring (meta) { const ms = Math.max(0, stem.now() - meta.due); this.late[ms] = (this.late[ms] ?? 0) + 1 }
  report () { return this.late }
}
`
const MANIFEST = `app: timers
cells:
  timer:
    code: ./timer.js
    replicas: ${INSTANCES}
    clones: 1
    memory: 8MiB
    timeout: 2000ms
routes:
  - GET /late -> timer.report
`

/** The same due times as plain timers in this process: their lateness, ms. */
async function timerBaseline (dues: number[]): Promise<number[]> {
  return await Promise.all(dues.map(async due => await new Promise<number>(resolve => {
    setTimeout(() => { resolve(Date.now() - due) }, due - Date.now())
  })))
}

async function main (): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'stem-bench-reminders-'))
  const nodes = await startMesh(3)
  try {
    await writeFile(join(dir, 'timer.js'), TIMER)
    await writeFile(join(dir, 'app.yaml'), MANIFEST)
    await stemJson(['publish', join(dir, 'app.yaml'), '--data', nodes[0].dataDir])
    const caller = createHttpCaller({ url: await apiUrlOf(nodes[0].dataDir), token: await readToken(nodes[0].dataDir) })
    const from = Date.now() + LEAD_MS
    const dues: number[] = []
    for (let k = 0; k < INSTANCES; k++) for (let i = 0; i < PER_INSTANCE; i++) dues.push(from + Math.floor(i * WINDOW_MS / PER_INSTANCE))
    const baseline = timerBaseline(dues)
    await Promise.all(Array.from({ length: INSTANCES }, async (_, k) => {
      const armed = await caller.ask(`timers/timer#${k}`, 'arm', [PER_INSTANCE, from, WINDOW_MS], { messageId: newMessageId() })
      if (armed !== PER_INSTANCE) throw new Error(`timers/timer#${k} holds ${String(armed)} reminders, not ${PER_INSTANCE}`)
    }))
    if (Date.now() > from) throw new Error(`scheduling took longer than the ${LEAD_MS} ms lead: the first reminders were due before the last were set`)
    const late: number[] = []
    const deadline = from + WINDOW_MS + 120_000
    for (let k = 0; k < INSTANCES; k++) {
      for (;;) {
        const histogram = await caller.ask(`timers/timer#${k}`, 'report', [], { messageId: newMessageId() }) as Record<string, number>
        const got = Object.entries(histogram).flatMap(([ms, n]) => Array<number>(n).fill(Number(ms)))
        if (got.length >= PER_INSTANCE) { late.push(...got); break }
        if (Date.now() > deadline) throw new Error(`timers/timer#${k}: ${got.length} of ${PER_INSTANCE} reminders fired within 120 s of the window's end`)
        await delay(250)
      }
    }
    const base = await baseline
    const p = (xs: number[], q: number): number => Math.max(0, percentile(xs, q))
    console.log(`bench reminders: lateness p50 ${p(late, 0.5)} ms, p99 ${p(late, 0.99)} ms, ${late.length} reminders due within ${WINDOW_MS / 1000} s on 3 nodes, ${INSTANCES} instances × ${PER_INSTANCE} (setTimeout p50 ${p(base, 0.5)} ms, p99 ${p(base, 0.99)} ms; ratio p99 ${(p(late, 0.99) / Math.max(1, p(base, 0.99))).toFixed(1)})`)
  } finally {
    await stopAll()
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
