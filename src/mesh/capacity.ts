// What a node contributes and what is still free, and the advert that gossips it.
import { multiaddr } from '@multiformats/multiaddr'
import { CapacityAdvert as AdvertMessage } from '../wire/proto/capacity.js'
import { nodeNameProblem, type Resources } from './resources.js'

export { nodeNameProblem, resourcesProblem, type Resources } from './resources.js'


export interface CapacityAdvert {
  /** peer id of the advertised node; must equal the frame's signer */
  peer: string
  addrs: string[]
  contributed: Resources
  free: Resources
  /** increases on every change of the advertised content; heartbeats repeat it */
  version: bigint
  leaving: boolean
  /** ms between this node's heartbeats: receivers expire it after a few missed ones */
  interval: number
  /**
   * recent rates on the node by key, per second (the dashboard's message rate of each cell
   * instance). They change without a new version: every heartbeat carries the latest.
   */
  load?: Record<string, number>
  /** cell instances on the node that are not serving, by address (`stem cells` shows them) */
  conditions?: Record<string, InstanceCondition>
  /** a name people read for the node (`stem start --name`), shown beside its short peer id */
  name?: string
}

export interface InstanceCondition {
  state: 'failed'
  reason: string
  /** ms since the epoch */
  since: number
}

/** The largest values an advert may carry: a sanity bound, not a policy. */
const MAX_ADDRS = 32
/** load entries an advert carries at most (the busiest), and the longest key */
export const MAX_LOAD = 128
const MAX_LOAD_KEY = 200
/** conditions an advert carries at most, and the longest reason */
export const MAX_CONDITIONS = 128
const MAX_REASON = 500

const toWire = (r: Resources): { cpu: number, memory: number, cells: number } => ({ cpu: Math.round(r.cpu * 1000), memory: r.memory, cells: r.cells })
const fromWire = (r: { cpu: number, memory: number, cells: number } | undefined): Resources => {
  if (r == null) return { cpu: 0, memory: 0, cells: 0 }
  if (!Number.isSafeInteger(r.memory)) throw new Error('memory out of range')
  return { cpu: r.cpu / 1000, memory: r.memory, cells: r.cells }
}

export function encodeAdvert (advert: CapacityAdvert): Uint8Array {
  return AdvertMessage.encode({
    peer: advert.peer,
    addrs: advert.addrs.map(a => new Uint8Array(multiaddr(a).bytes)),
    contributed: toWire(advert.contributed),
    free: toWire(advert.free),
    version: advert.version,
    leaving: advert.leaving,
    interval: advert.interval,
    load: Object.entries(advert.load ?? {})
      .map(([key, rate]) => ({ key, milli: Number.isFinite(rate) ? Math.min(0xffffffff, Math.round(rate * 1000)) : 0 }))
      .filter(({ key, milli }) => key !== '' && key.length <= MAX_LOAD_KEY && milli > 0)
      .sort((a, b) => b.milli - a.milli)
      .slice(0, MAX_LOAD),
    conditions: Object.entries(advert.conditions ?? {})
      .filter(([address]) => address !== '' && address.length <= MAX_LOAD_KEY)
      .slice(0, MAX_CONDITIONS)
      .map(([address, c]) => ({ address, state: c.state, reason: c.reason.slice(0, MAX_REASON), since: c.since })),
    name: advert.name ?? ''
  })
}

/** Throws a one-line error for anything that is not a well-formed advert. */
export function decodeAdvert (bytes: Uint8Array): CapacityAdvert {
  const m = AdvertMessage.decode(bytes, { limits: { addrs: MAX_ADDRS, load: MAX_LOAD, conditions: MAX_CONDITIONS } })
  if (m.peer === '') throw new Error('advert has no peer id')
  const load = new Map<string, number>()
  for (const { key, milli } of m.load) {
    if (key === '' || key.length > MAX_LOAD_KEY) throw new Error(`advert has a load key of ${key.length} characters (1 to ${MAX_LOAD_KEY})`)
    if (load.has(key)) throw new Error(`advert has the load key ${JSON.stringify(key.slice(0, 80))} twice`)
    load.set(key, milli / 1000)
  }
  const advert: CapacityAdvert = {
    peer: m.peer,
    addrs: m.addrs.map(a => multiaddr(a).toString()),
    contributed: fromWire(m.contributed),
    free: fromWire(m.free),
    version: m.version,
    leaving: m.leaving,
    interval: m.interval,
    // own properties even for keys such as __proto__
    load: Object.fromEntries(load),
    conditions: decodeConditions(m.conditions),
    ...(m.name !== '' ? { name: m.name } : {})
  }
  if (advert.name !== undefined) {
    const problem = nodeNameProblem(advert.name)
    if (problem !== undefined) throw new Error(`advert has an ${problem}`)
  }
  if (advert.version === 0n) throw new Error('advert has no version')
  if (advert.interval === 0) throw new Error('advert has no heartbeat interval')
  return advert
}

function decodeConditions (list: Array<{ address: string, state: string, reason: string, since: number }>): Record<string, InstanceCondition> {
  const out = new Map<string, InstanceCondition>()
  for (const { address, state, reason, since } of list) {
    if (address === '' || address.length > MAX_LOAD_KEY) throw new Error(`advert has a condition address of ${address.length} characters (1 to ${MAX_LOAD_KEY})`)
    if (out.has(address)) throw new Error(`advert has a condition of ${JSON.stringify(address.slice(0, 80))} twice`)
    if (state !== 'failed') throw new Error(`advert has a condition ${JSON.stringify(state.slice(0, 20))} (only failed)`)
    if (reason.length > MAX_REASON) throw new Error(`advert has a condition reason of ${reason.length} characters (at most ${MAX_REASON})`)
    if (!Number.isSafeInteger(since)) throw new Error('advert has a condition time out of range')
    out.set(address, { state, reason, since })
  }
  return Object.fromEntries(out)
}
