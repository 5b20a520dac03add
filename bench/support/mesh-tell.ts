// Tells between cells on two nodes of a real mesh: the `remote-tell` of bench/messaging.ts
// (in process, raw nodes) measured on the stream benches' own mesh, cell to cell.
import { setTimeout as delay } from 'node:timers/promises'
import type { StemConnection } from '../../src/messaging/sdk.js'
import type { CellListing } from './cells-of.js'

/** tells `n` (at most 1000, the per-message limit) `add`s to `target` */
export const TELLER = `
export default class Teller {
  run (target, n) { for (let i = 0; i < n; i++) stem.tell(target, 'add', i); return n }
}
`
export const TALLY = `
export default class Tally {
  count = 0
  add () { this.count++ }
  get () { return this.count }
}
`
const BATCH = 500

/** an instance of `cell` (app/cell) whose primary runs on another node than `from`'s */
export function remoteInstance (cells: CellListing[], from: string, cell: string): string {
  const node = cells.find(c => c.address === from)?.node
  const target = cells.find(c => c.address.startsWith(`${cell}#`) && c.node !== node)
  if (node === undefined || target === undefined) throw new Error(`no instance of ${cell} runs on another node than ${from}`)
  return target.address
}

/** tells/s from `teller` to `tally` (a Tally); at most 2 batches unapplied at a time, since a full mailbox drops tells */
export async function tellRate (sdk: StemConnection, teller: string, tally: string, count: number): Promise<number> {
  const deadline = (): number => Date.now() + 30_000
  const applied = async (): Promise<number> => await sdk.call(tally, 'get', [], { deadline: deadline() }) as number
  const before = await applied()
  const started = performance.now()
  let sent = 0
  while (sent < count) {
    while (await applied() - before < sent - BATCH) await delay(5)
    sent += await sdk.call(teller, 'run', [tally, Math.min(BATCH, count - sent)], { deadline: deadline() }) as number
  }
  const end = Date.now() + 60_000
  while (await applied() - before < count) {
    if (Date.now() > end) throw new Error(`remote tells: ${await applied() - before} of ${count} arrived within 60 s`)
    await delay(5)
  }
  return count / ((performance.now() - started) / 1000)
}
