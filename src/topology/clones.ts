// Warm clones (SPEC §4): protocol /stem/<mesh>/clone/2 (2: a stream may carry many requests,
// matched to their answers by id: a primary's pushes to a peer share one, clone-session.ts;
// a node of the one-request-per-stream /clone/1 is not asked).
//
// Clone side: on the leader's `hold`, the node fetches the instance's bundle and keeps a
// clone record; each `state` from the instance's primary replaces the held state if its
// version is newer; on `promote` the clone becomes the primary: the cell is transformed
// here from the held state (warm: the bundle is already here). With a CloneStore the
// records are also written to disk (write-behind: "held" means in this node's memory,
// README "Durability") and restored on restart; announcements that no longer assign a
// clone here drop it (fencing.ts unwantedClones).
//
// Primary side: `gate` is the cell runtime's replyGate, so the answer to a message
// leaves only after the state it produced is held by at least one of the instance's
// clones (as the app table lists them) and, with `durability: disk` (the default), is
// fsynced on this node's disk (<dataDir>/cells, the `primaries` store) and on that clone's.
// With `durability: memory` the files follow behind. A clone
// newly assigned to a local instance is sent the instance's latest state as soon as an
// announcement lists it, so it does not wait for the next message to hold anything.
//
// Restart (README "Durability"): the copies on disk — clones and this node's primaries —
// come back as held copies flagged `restored`. They are not run: the app's leader asks
// every node that may hold a copy for its inventory (instance, epoch, version) and starts
// the instance from the newest one (a promotion here, or a fetch of its state). A restored
// copy stays until an announcement shows its instance running elsewhere or gone.
import type { Libp2p, Stream, Connection } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { CellLimits } from '../cells/limits.js'
import { decodeReplyWindow } from '../cells/reply-window.js'
import { readFrames, writeFrame } from '../messaging/framing.js'
import { createFrameVerifier } from '../wire/frame.js'
import type { FrameSigner } from '../wire/frame.js'
import { CloneAnswer, CloneRequest } from '../wire/proto/clone.js'
import type { CloneState } from '../wire/proto/clone.js'
import { createLogger } from '../util/logger.js'
import type { Logger } from '../util/logger.js'
import type { AppTable } from './app-table.js'
import { placementRefusal } from './placement-authority.js'
import type { AppAnnouncement } from './announcement.js'
import type { CloneStore, LegacyState, StoredClone } from './clone-store.js'
import { fenceRefusal, followedPrimary, leaseHolds, staleEpochRefusal, unwantedClones } from './fencing.js'
import { KEEP_DROPPED_MS, KeptCopies } from './kept-copies.js'
import type { InventoryFence, LocalPrimary } from './fencing.js'
import type { BundlePort, CellRuntimePort } from './ports.js'
import { CloneSession, SESSION_REQUESTS } from './clone-session.js'
import type { CloneAsk } from './clone-session.js'

export interface CloneServiceComponents {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'>
  runtime: CellRuntimePort
  bundles: BundlePort
  signer: FrameSigner
  table: AppTable
  /** where held clones are persisted; in memory only without it */
  store?: CloneStore
  /** where the states of this node's primaries are persisted (<dataDir>/cells) */
  primaries?: CloneStore
  logger?: Logger
}

export interface CloneServiceInit {
  mesh: string
  /** ms for one clone request (default 5 s) */
  timeout?: number
  /** largest state sent or accepted, bytes (default 8 MiB) */
  maxFrameBytes?: number
  /** ms a fresh hold is kept although announcements do not list it yet (default 10 s) */
  holdGraceMs?: number
  /** ms a copy is kept (inventory and fetch only) after announcements stopped placing it here while its instance runs elsewhere (kept-copies.ts; default 5 min) */
  keepDroppedMs?: number
  /** ms after start when clones restored from disk whose app was never announced are reported (kept; default 60 s) */
  restoreGraceMs?: number
  /**
   * the primary's lease (fencing.ts leaseHolds): an answer leaves only on a clone's
   * confirmation asked for less than this long ago, and a promoted clone waits this long
   * after its last confirmation to the old primary (default 1 s, below the failure
   * detector's verdict)
   */
  leaseMs?: number
}

/** re-confirmations a reply tries when its clone's confirmation came back after the lease */
const LEASE_ATTEMPTS = 3

interface HeldClone {
  bundle: string
  owner: Uint8Array
  limits?: CellLimits
  state?: string
  version: number
  /** placement epoch of `state` (a newer epoch wins over a higher version) */
  epoch: number
  /** the reply window that came with `state` */
  replies?: string
  heldAt: number
  /** restored from disk, not yet listed by an announcement */
  restored: boolean
  /** the state came from disk and no primary has sent one since: the first that does replaces it */
  fromDisk: boolean
  /** the file it was restored from */
  file?: string
  /** ms (local clock) when this clone last confirmed a state to the primary */
  confirmedAt?: number
  /** the primary the leader's hold named, in its placement epoch (fencing.ts followedPrimary) */
  follows?: { primary: string, epoch: number }
}

export type Durability = 'disk' | 'memory'

/** a local primary's newest state, with the reply window that belongs to it */
interface InstanceState {
  state: string
  version: number
  replies: string
}

/** one copy of an instance a node holds, as its inventory reports it */
export interface CopyReport {
  address: string
  version: number
  epoch: number
  /** a transformed primary there */
  running: boolean
  /** the node's copy was damaged on disk (moved aside): not usable, but the state existed */
  damaged?: boolean
  /**
   * in a fenced inventory, for the fenced address: ms since a clone there last took a
   * primary's state to confirm (at most the node's uptime); undefined: not reported (an
   * older Stem)
   */
  quietMs?: number
}

/** A request that never left this node: the stream to the peer could not be opened, so the peer saw nothing of it. */
export class NotSentError extends Error {
  constructor (peer: string, cause: Error) {
    super(`no stream to ${peer}: ${cause.message}`)
    this.name = 'NotSentError'
  }
}

const INSTANCE = /^[a-z0-9][a-z0-9-]{0,62}\/[A-Za-z0-9_-]+#\d+$/i

export class CloneService {
  readonly protocol: string
  private readonly log: Logger
  private readonly verifier
  private readonly held = new Map<string, HeldClone>()
  /** copies no longer placed here, kept a while for a recovery (kept-copies.ts) */
  private readonly kept: KeptCopies<HeldClone>
  /** primary side: the newest state of each local instance, and the version its clones hold */
  private readonly latest = new Map<string, InstanceState>()
  private readonly replicated = new Map<string, number>()
  /** primary side: the version each clone peer acknowledged, by instance */
  private readonly ackedBy = new Map<string, Map<string, number>>()
  /** primary side: when the newest request a clone confirmed was sent, by instance (the lease) */
  private readonly confirmedAt = new Map<string, number>()
  /** primary side: the push of each instance's state under way, and the clones it went to */
  private readonly inflight = new Map<string, { push: Promise<void>, clones: string }>()
  /** primary side: replies waiting on a push, woken when an announcement names other clones */
  private readonly cloneChanges = new Map<string, { clones: string, changed: Promise<void>, wake: () => void }>()
  /** local primaries being reverted as superseded (demote) */
  private readonly demoting = new Set<string>()
  /** `address peer` of the seeding pushes under way */
  private readonly seeding = new Set<string>()
  /** the fence the latest recovery's inventory set on each instance held here (fencing.ts fenceRefusal) */
  private readonly fences = new Map<string, InventoryFence>()
  /** per instance, when a clone here last took a primary's state (quietMs: a fenced inventory reports it) */
  private readonly lastTook = new Map<string, number>()
  /** when this service was made: a clone of an earlier run may have confirmed a state up to then */
  private readonly bornAt = Date.now()
  /**
   * per instance, the newest placement epoch a leader's step or an announcement made this
   * node its primary in: the epoch of the state a primary here runs. A deposed primary keeps
   * the epoch it ran in while the announcements move on to a newer one (chaos seed 7: a
   * primary woken from a stall, labelled with the newest announced epoch, looked like the
   * newest copy, and recovery started the new primary from its old state).
   */
  private readonly primaryEpochs = new Map<string, number>()
  /** instances whose copy on this disk was damaged (reported by the inventory: not blank) */
  private readonly damaged = new Set<string>()
  /** primary side: the write of each local instance's newest state to this node's disk */
  private readonly primaryWrites = new Map<string, Promise<void>>()
  private readonly maxFrameBytes: number
  /** asking side: the stream to each peer that carries this node's pushes of its primaries' states (clone-session.ts) */
  private readonly sessions = new Map<string, Promise<CloneSession>>()
  /** every open stream of this node's requests, by peer (the shared one, those of busy moments and of single requests) */
  private readonly streamsTo = new Map<string, Set<CloneSession>>()
  /** answering side: the streams this service serves (a stopped service serves none: its peers ask anew) */
  private readonly served = new Set<Stream>()
  private restoreTimer?: NodeJS.Timeout
  private running = false

  constructor (private readonly components: CloneServiceComponents, private readonly init: CloneServiceInit) {
    this.protocol = `/stem/${init.mesh}/clone/2`
    this.log = components.logger ?? createLogger('clones')
    this.maxFrameBytes = init.maxFrameBytes ?? 8 * 1024 * 1024
    this.verifier = createFrameVerifier({ maxBytes: this.maxFrameBytes + 4096, name: 'clone' })
    this.kept = new KeptCopies(init.keepDroppedMs ?? KEEP_DROPPED_MS, address => {
      this.log.info(`dropped the kept copy of ${address}`)
      this.removeFiles(address)
    })
    components.runtime.addEventListener('cell:snapshot', evt => {
      const { address, state, version, replies } = evt.detail
      this.latest.set(address, { state, version, replies })
      this.damaged.delete(address)
      this.persistPrimary(address, { state, version, replies })
    })
    // a primary the leader just started or promoted holds its lease from its start: its
    // first reads need no clone (its new clones may not hold it yet)
    components.runtime.addEventListener('cell:started', evt => { this.confirmedAt.set(evt.detail.address, Date.now()) })
    components.runtime.addEventListener('cell:reverted', evt => {
      const address = evt.detail.address
      this.cloneChanges.get(address)?.wake()
      this.cloneChanges.delete(address)
      this.latest.delete(address)
      this.replicated.delete(address)
      this.ackedBy.delete(address)
      this.confirmedAt.delete(address)
      this.primaryWrites.delete(address)
      // a clone of it held here (a handover that keeps this node as clone) now holds its state
      if (!this.held.has(address)) this.components.primaries?.remove(address).catch((err: Error) => { this.log.warn(`cannot remove the state file of ${address}: ${err.message}`) })
    })
  }

  /** frames refused by this protocol's verifier, by reason (metrics) */
  rejections (): Record<string, number> {
    return this.verifier.counts()
  }

  async start (): Promise<void> {
    if (this.running) return
    await this.restore()
    await this.components.libp2p.handle(this.protocol, (stream, connection) => { this.serve(stream, connection) }, { maxInboundStreams: 64 })
    this.running = true
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    clearTimeout(this.restoreTimer)
    this.kept.clear()
    for (const session of this.sessions.values()) session.then(s => { s.close('the clone service stopped') }, () => {})
    this.sessions.clear()
    await this.components.libp2p.unhandle(this.protocol)
    for (const stream of this.served) stream.abort(new Error('the clone service stopped'))
    this.served.clear()
    await Promise.all([this.components.store?.close(), this.components.primaries?.close()])
  }

  /**
   * The copies this node held when it stopped (its clones and its primaries' states), back
   * from disk as restored copies: the newest of each instance, by (epoch, version). The
   * app's leader decides which one an instance starts from; announcements drop the rest.
   */
  private async restore (): Promise<void> {
    const now = Date.now()
    let restored = 0
    for (const store of [this.components.store, this.components.primaries]) {
      if (store === undefined) continue
      const { clones, dropped, damaged, legacy } = await store.loadAll()
      for (const line of dropped) this.log.warn(line)
      for (const address of damaged) this.damaged.add(address)
      clones.push(...await this.completeLegacy(legacy))
      for (const c of clones) {
        const before = this.held.get(c.address)
        if (before !== undefined && !newer(c.epoch ?? 0, c.version, before.epoch, before.version)) continue
        if (before === undefined) restored++
        this.held.set(c.address, { bundle: c.bundle, owner: c.owner, limits: c.limits, state: c.state, version: c.version, epoch: c.epoch ?? 0, replies: c.replies, heldAt: now, restored: true, fromDisk: true, file: store.fileOf(c.address) })
      }
    }
    if (restored > 0) this.log.info(`restored ${restored} instance state(s) from disk; each app's leader decides where they start`)
    this.restoreTimer = setTimeout(() => {
      for (const [address, clone] of this.held) {
        const app = address.slice(0, address.indexOf('/'))
        // kept: the app's group may only be down; a person may want it
        if (clone.restored && this.components.table.get(app) === undefined) this.log.warn(`${clone.file ?? address}: a copy of ${address} (version ${clone.version}) for app ${app}, which no announcement has named since the restart: kept, not served`)
      }
    }, this.init.restoreGraceMs ?? 60_000)
    this.restoreTimer.unref()
  }

  /** States of an earlier Stem's files get their owner and limits from their bundle (in the local store). */
  private async completeLegacy (legacy: LegacyState[]): Promise<StoredClone[]> {
    const out: StoredClone[] = []
    for (const l of legacy) {
      try {
        const bundle = await this.components.bundles.fetch(l.bundle, { peers: [], signal: AbortSignal.timeout(1000) })
        out.push({ address: l.address, bundle: l.bundle, owner: bundle.owner, limits: bundle.limits, state: l.state, version: l.version, epoch: 0 })
      } catch (err) {
        this.log.warn(`${l.file}: a state of ${l.address} written by an earlier stem, whose bundle ${l.bundle} is not on this node (${(err as Error).message.split('\n')[0]}): left in place, not used`)
      }
    }
    return out
  }

  private async persist (address: string, clone: HeldClone, now = false): Promise<void> {
    await this.components.store?.save({ address, bundle: clone.bundle, owner: clone.owner, limits: clone.limits, state: clone.state, version: clone.version, epoch: clone.epoch, replies: clone.replies }, { now }).catch((err: Error) => {
      this.log.warn(`cannot write the clone of ${address} to disk: ${err.message}`)
      throw err
    })
  }

  /** Writes a local primary's new state (and its reply window, in the same file) to <dataDir>/cells (see gate for who waits for it). */
  private persistPrimary (address: string, { state, version, replies }: InstanceState): void {
    const store = this.components.primaries
    const bundle = this.components.runtime.bundleOf(address)
    if (store === undefined || bundle === undefined) return
    const write = store.save({ address, bundle: bundle.hash, owner: bundle.owner, limits: this.components.runtime.cell(address)?.limits, state, version, epoch: this.epochOf(address), replies }, { now: this.durabilityOf(address) === 'disk' })
    write.catch((err: Error) => { this.log.warn(`cannot write the state of ${address} to disk: ${err.message}`) })
    this.primaryWrites.set(address, write)
  }

  /** the epoch of the state this node's primary of `address` runs (primaryEpochs; the announced one while it names this node) */
  private epochOf (address: string): number {
    const app = address.slice(0, address.indexOf('/'))
    const inst = this.components.table.get(app)?.instances.find(i => i.address === address)
    if (inst !== undefined && inst.node === this.components.signer.peerId) this.runsAsPrimary(address, Number(inst.epoch))
    return this.primaryEpochs.get(address) ?? 0
  }

  /** A leader's step (a start, a promotion) or an announcement made this node the primary of `address` in placement `epoch`. */
  runsAsPrimary (address: string, epoch: number): void {
    if (epoch > (this.primaryEpochs.get(address) ?? 0)) this.primaryEpochs.set(address, epoch)
  }

  /** the cell's durability level, as its app's announcement says (disk if unknown) */
  durabilityOf (address: string): Durability {
    const app = address.slice(0, address.indexOf('/'))
    const cell = address.slice(address.indexOf('/') + 1, address.lastIndexOf('#'))
    return this.components.table.get(app)?.cells.find(c => c.name === cell)?.durability === 'memory' ? 'memory' : 'disk'
  }

  /** Stops holding `address`; with `keep`, its state (if any) stays for a recovery a while, with its file (kept-copies.ts). */
  private drop (address: string, why: string, keep = false): void {
    const clone = this.held.get(address)
    if (clone === undefined) return
    this.held.delete(address)
    // the app's cell host, started warm at the hold, goes with its last clone (if no cell of the app runs here)
    const app = address.slice(0, address.indexOf('/'))
    if (![...this.held.keys()].some(a => a.startsWith(`${app}/`))) this.components.runtime.release(app)
    if (keep && clone.state !== undefined) {
      this.kept.keep(address, clone)
      this.log.info(`no longer holds the clone of ${address} (${why}); its copy (version ${clone.version}, epoch ${clone.epoch}) is kept ${Math.round((this.init.keepDroppedMs ?? KEEP_DROPPED_MS) / 1000)} s for a recovery`)
      return
    }
    this.log.info(`dropped the clone of ${address}: ${why}`)
    this.removeFiles(address)
  }

  /** Removes what this node's disk holds of `address` as a copy (its clone file, and a reverted primary's state file). */
  private removeFiles (address: string): void {
    // held (again, or as a demoted primary's copy): its files are in use
    if (this.held.has(address)) return
    if (this.components.runtime.cell(address)?.status !== 'transformed') this.components.primaries?.remove(address).catch(() => {})
    this.components.store?.remove(address).catch((err: Error) => { this.log.warn(`cannot remove the clone file of ${address}: ${err.message}`) })
  }

  // ---- announcements

  /**
   * An announcement of `a.app` was learned: clone side, drop the clones it no longer assigns
   * here and confirm restored ones it lists; primary side, send the latest state of local
   * instances to clones that have not acknowledged it (clones the leader just placed).
   */
  onAnnouncement (a: AppAnnouncement): void {
    const self = this.components.signer.peerId
    const held = [...this.held].map(([address, c]) => ({ address, heldAt: c.heldAt, restored: c.restored }))
    for (const address of unwantedClones(a, held, self, Date.now(), this.init.holdGraceMs ?? 10_000)) {
      // an instance that runs on (elsewhere) keeps this copy a while: its new clones may not hold its state yet
      this.drop(address, a.reverted ? `app ${a.app} was reverted` : `app ${a.app} no longer places it here`, !a.reverted && a.instances.some(i => i.address === address))
    }
    // a damaged copy of an instance the app no longer has (its cell reverted) is forgotten:
    // published again, the instance starts new
    for (const address of this.damaged) if (address.startsWith(`${a.app}/`) && (a.reverted || !a.instances.some(i => i.address === address))) this.damaged.delete(address)
    for (const inst of a.instances) {
      const clone = this.held.get(inst.address)
      if (clone !== undefined && inst.clones.includes(self)) clone.restored = false
      // a peer no longer listed as clone may be listed again later, holding nothing then
      const acked = this.ackedBy.get(inst.address)
      if (acked !== undefined) for (const peer of acked.keys()) if (!inst.clones.includes(peer)) acked.delete(peer)
      if (inst.node === self && this.running) this.seed(inst.address, inst.clones)
      const waiting = this.cloneChanges.get(inst.address)
      if (waiting !== undefined && waiting.clones !== cloneSet(inst.clones)) {
        this.cloneChanges.delete(inst.address)
        waiting.wake()
      }
    }
  }

  /** The app was reverted: its clones held here go. */
  dropApp (app: string): void {
    for (const address of [...this.held.keys()]) if (address.startsWith(`${app}/`)) this.drop(address, `app ${app} was reverted`)
    for (const [address] of this.kept.ofApp(app)) {
      this.kept.delete(address)
      this.removeFiles(address)
    }
    for (const address of [...this.fences.keys()]) if (address.startsWith(`${app}/`)) this.fences.delete(address)
    for (const address of [...this.lastTook.keys()]) if (address.startsWith(`${app}/`)) this.lastTook.delete(address)
  }

  /** What this node holds of `app`'s instances: running primaries and held copies (the newest of each). */
  inventory (app: string): CopyReport[] {
    const out = new Map<string, CopyReport>()
    for (const address of this.damaged) if (address.startsWith(`${app}/`)) out.set(address, { address, version: -1, epoch: 0, running: false, damaged: true })
    for (const [address, k] of this.kept.ofApp(app)) if (k.state !== undefined) out.set(address, { address, version: k.version, epoch: k.epoch, running: false })
    for (const [address, c] of this.held) {
      if (address.startsWith(`${app}/`) && c.state !== undefined) out.set(address, { address, version: c.version, epoch: c.epoch, running: false })
    }
    for (const cell of this.components.runtime.cells()) {
      if (cell.app !== app || cell.status !== 'transformed' || !INSTANCE.test(cell.address)) continue
      out.set(cell.address, { address: cell.address, version: cell.version, epoch: this.epochOf(cell.address), running: true })
    }
    return [...out.values()].sort((a, b) => a.address < b.address ? -1 : 1)
  }

  /**
   * The leader asks `peer` for its inventory of `app`; with `fence`, for the recovery of
   * `fence.address` in `fence.epoch` on `fence.primary`, which fences that instance there.
   */
  async inventoryOf (peer: string, app: string, signal?: AbortSignal, fence?: InventoryFence & { address: string }): Promise<CopyReport[]> {
    const answer = await this.request(peer, { inventory: { app, address: fence?.address ?? '', epoch: BigInt(fence?.epoch ?? 0), primary: fence?.primary ?? '' } }, signal)
    return answer.copies.filter(c => c.address.startsWith(`${app}/`) && INSTANCE.test(c.address)).map(c => ({
      address: c.address,
      version: c.damaged ? -1 : Number(c.version),
      epoch: Number(c.epoch),
      running: c.running,
      damaged: c.damaged,
      ...(c.quietMs !== undefined ? { quietMs: Number(c.quietMs) } : {})
    }))
  }

  /** The leader fetches the state of the copy of `address` that `peer` holds. */
  async fetchCopy (peer: string, address: string): Promise<{ state: string, version: number, epoch: number, replies?: string }> {
    const answer = await this.request(peer, { fetch: { address } })
    return { state: answer.state, version: Number(answer.version), epoch: Number(answer.epoch), ...(answer.replies !== '' ? { replies: answer.replies } : {}) }
  }

  /** Pushes the latest state of local instance `address` to each of `clones` that lacks it. */
  private seed (address: string, clones: string[]): void {
    const latest = this.latest.get(address)
    if (latest === undefined || this.components.runtime.cell(address)?.status !== 'transformed') return
    for (const peer of clones) {
      const key = `${address} ${peer}`
      if ((this.ackedBy.get(address)?.get(peer) ?? -1) >= latest.version || this.seeding.has(key)) continue
      this.seeding.add(key)
      this.request(peer, { state: this.stateRequest(address, latest) })
        .then(() => { this.acked(address, peer, latest.version) }, (err: Error) => { this.unacked(address, peer, err) })
        .finally(() => { this.seeding.delete(key) })
    }
  }

  /** A clone refused a state: one that no longer holds the instance is seeded again on the next announcement. */
  private unacked (address: string, peer: string, err: unknown): void {
    // a request may fail with something other than an Error (an abort reason)
    const message = err instanceof Error ? err.message : String(err)
    this.log.debug(`the clone of ${address} on ${peer} did not take a state: ${message}`)
    // a recovery of a newer epoch asked that clone: another node is taking this instance over
    if (message.startsWith('fenced: ')) this.demote(address, `its clone on ${peer} refused it: ${message.slice('fenced: '.length)}`).catch((e: Error) => { this.log.warn(`cannot revert the superseded primary of ${address}: ${e.message}`) })
    if (/no clone of/.test(message)) this.ackedBy.get(address)?.delete(peer)
  }

  private acked (address: string, peer: string, version: number): void {
    let peers = this.ackedBy.get(address)
    if (peers === undefined) { peers = new Map(); this.ackedBy.set(address, peers) }
    if (version > (peers.get(peer) ?? -1)) peers.set(peer, version)
    if (version > (this.replicated.get(address) ?? -1)) this.replicated.set(address, version)
  }

  // ---- the leader's requests

  /** The leader has `peer` hold a clone of `address`, following `placed.primary` (placement epoch `placed.epoch`). */
  async hold (peer: string, address: string, bundle: string, owner: Uint8Array, limits: CellLimits, placed?: { primary: string, epoch: number }): Promise<void> {
    await this.request(peer, { hold: { address, bundle: Buffer.from(bundle, 'hex'), owner: new Uint8Array(owner), memory: BigInt(limits.memory), timeout: limits.timeout, mailbox: limits.mailbox, primary: placed?.primary ?? '', epoch: BigInt(placed?.epoch ?? 0) } })
  }

  /** The leader promotes `peer`'s clone of `address` (in placement `epoch`: a node that knows a newer one refuses). */
  async promote (peer: string, address: string, epoch = 0): Promise<void> {
    await this.request(peer, { promote: { address, epoch: BigInt(epoch) } })
  }

  /** the clones held here with their memory limits (they count against this node's capacity like running cells) */
  heldCells (): Array<{ address: string, app: string, memory: number }> {
    return [...this.held].map(([address, c]) => ({ address, app: address.slice(0, address.indexOf('/')), memory: c.limits?.memory ?? 0 }))
  }

  /** whether this node holds a clone of `address` */
  holds (address: string): boolean {
    return this.held.has(address)
  }

  // ---- the durability gate

  /**
   * For CellRuntimeInit.replyGate: resolves once a clone of `address` holds its state
   * `version` (none needed without clones) and, with `durability: disk`, that state is
   * fsynced here (the clone acknowledges only once it is fsynced there too).
   */
  async gate (address: string, _version: number, read = false): Promise<void> {
    if (read) return await this.fenceRead(address)
    // the runtime hands the state to 'cell:snapshot' listeners before it calls the gate,
    // so the newest state noted here (and the write under way) is at least `_version`
    const write = this.durabilityOf(address) === 'disk' ? this.primaryWrites.get(address) : undefined
    await Promise.all([write, this.replicateInstance(address)])
  }

  /**
   * A result that changed no state leaves while the primary's lease holds. Past it, a
   * primary the announcement has replaced refuses, and any other re-confirms with a clone
   * (a clone refuses a primary it no longer follows), so a deposed primary — cut off, or
   * woken from a stall — cannot answer from its stale state.
   */
  private async fenceRead (address: string): Promise<void> {
    if (this.clonesOf(address).length === 0) return this.unfencedUnlessReplaced(address)
    if (leaseHolds(this.confirmedAt.get(address) ?? -Infinity, Date.now(), this.init.leaseMs ?? 1000)) return
    const primary = this.components.table.resolve(address)?.peer
    if (primary !== undefined && primary !== this.components.signer.peerId) throw new Error(`the announcement places the primary of ${address} on ${primary}`)
    await this.replicateInstance(address)
  }

  /**
   * An instance its announcement lists without clones has no clone to fence it: its primary
   * answers unless that announcement places it on another node (chaos: a primary woken from
   * a stall found its successor announced, still starting and without its clone yet, and
   * answered from its old state).
   */
  private unfencedUnlessReplaced (address: string): void {
    const primary = this.components.table.resolve(address)?.peer
    if (primary !== undefined && primary !== this.components.signer.peerId) throw new Error(`the announcement places the primary of ${address} on ${primary}`)
  }

  private async replicateInstance (address: string): Promise<void> {
    const leaseMs = this.init.leaseMs ?? 1000
    for (let lapsed = 0; ;) {
      const latest = this.latest.get(address)
      const clones = this.clonesOf(address)
      if (latest === undefined) {
        // a cell whose state never changed has nothing to hold; one reverted here meanwhile
        // (superseded, demoted) had its state dropped: the state this reply came from is
        // held nowhere this node knows of, so it must not leave (a reply waiting on another's
        // push found the state gone and left without a clone: chaos seed 7)
        if (this.components.runtime.cell(address)?.status === 'transformed') return
        throw new Error(`the primary of ${address} was reverted on this node`)
      }
      if (clones.length === 0) return this.unfencedUnlessReplaced(address)
      if ((this.replicated.get(address) ?? -1) >= latest.version) {
        if (leaseHolds(this.confirmedAt.get(address) ?? -Infinity, Date.now(), leaseMs)) return
        // the confirmation came too late to answer on (this node stalled or was cut off
        // since it asked): ask again; a clone promoted meanwhile refuses
        if (++lapsed > LEASE_ATTEMPTS) throw new Error(`the lease of the primary of ${address} lapsed: no clone confirmed its state within ${leaseMs} ms`)
      }
      // a push to clones an announcement has replaced since (one judged stalled) is not
      // waited for: its request would hold every reply until it times out
      const set = cloneSet(clones)
      const changed = this.clonesChanged(address, set)
      const running = this.inflight.get(address)
      if (running?.clones === set) { await Promise.race([running.push.catch(() => {}), changed]); continue }
      const entry = { push: this.push(address, clones, latest), clones: set }
      this.inflight.set(address, entry)
      const failed = await Promise.race([entry.push.then(() => undefined, (err: Error) => err), changed.then(() => undefined)])
      if (this.inflight.get(address) === entry) this.inflight.delete(address)
      if (failed !== undefined) throw failed
    }
  }

  /** settles once an announcement names other clones of local instance `address` than `clones` */
  private async clonesChanged (address: string, clones: string): Promise<void> {
    const waiting = this.cloneChanges.get(address)
    if (waiting?.clones === clones) return await waiting.changed
    const { promise, resolve } = Promise.withResolvers<void>()
    this.cloneChanges.set(address, { clones, changed: promise, wake: resolve })
    waiting?.wake()
    return await promise
  }

  /** the push of a state to a clone: the reply window goes in the same request as the state it belongs to */
  private stateRequest (address: string, latest: InstanceState): CloneState {
    return { address, state: latest.state, version: BigInt(latest.version), epoch: BigInt(this.epochOf(address)), replies: latest.replies }
  }

  private async push (address: string, clones: string[], latest: InstanceState): Promise<void> {
    const version = latest.version
    const askedAt = Date.now()
    const failures: string[] = []
    const { promise, resolve, reject } = Promise.withResolvers<void>()
    let pending = clones.length
    for (const peer of clones) {
      this.request(peer, { state: this.stateRequest(address, latest) }).then(() => {
        this.acked(address, peer, version)
        if (askedAt > (this.confirmedAt.get(address) ?? -Infinity)) this.confirmedAt.set(address, askedAt)
        resolve()
      }, (err: Error) => {
        this.unacked(address, peer, err)
        failures.push(`${peer}: ${err.message}`)
        if (--pending === 0) reject(new Error(`no clone of ${address} took its state (${failures.join('; ')})`))
      })
    }
    await promise
  }

  private clonesOf (address: string): string[] {
    const app = address.slice(0, address.indexOf('/'))
    return this.components.table.get(app)?.instances.find(i => i.address === address)?.clones ?? []
  }

  // ---- the wire

  private async request (peer: string, request: CloneAsk, outer?: AbortSignal): Promise<CloneAnswer> {
    const self = this.components.signer.peerId
    if (peer === self) return await this.handle(self, request)
    const timeout = AbortSignal.timeout(this.init.timeout ?? 5000)
    const signal = outer === undefined ? timeout : AbortSignal.any([timeout, outer])
    // a primary's pushes of its states share a stream (they are on every reply's path); the
    // leader's rare steps and a recovery's asks open one each, as a new dial picks the
    // connection that works now
    const push = request.state != null
    let shared = push ? this.sessions.get(peer) : undefined
    if (push && shared === undefined) {
      const forget = (): void => { if (this.sessions.get(peer) === opening) this.sessions.delete(peer) }
      const opening = this.openSession(peer, timeout, forget)
      opening.catch(forget)
      this.sessions.set(peer, opening)
      shared = opening
    }
    const session = await shared
    if (session?.usable === true) return await session.ask(request, signal)
    // not a push, or the shared stream is busy (or just retired): a stream of its own
    const own = await this.openSession(peer, signal).catch((err: Error) => { throw new NotSentError(peer, err) })
    try {
      return await own.ask(request, signal)
    } finally {
      own.close('clone request done')
    }
  }

  private async openSession (peer: string, signal: AbortSignal, onRetire?: () => void): Promise<CloneSession> {
    const stream = await this.components.libp2p.dialProtocol(peerIdFromString(peer), this.protocol, { signal })
    const open = this.streamsTo.get(peer) ?? new Set<CloneSession>()
    this.streamsTo.set(peer, open)
    const session = new CloneSession({
      stream,
      peer,
      signer: this.components.signer,
      verifier: this.verifier,
      maxFrameBytes: this.maxFrameBytes + 4096,
      onRetire,
      onClose: () => {
        open.delete(session)
        if (open.size === 0 && this.streamsTo.get(peer) === open) this.streamsTo.delete(peer)
      }
    })
    open.add(session)
    return session
  }

  /**
   * The failure detector judged `peer` down: the requests waiting on it fail now, not at
   * their timeout (a stalled node's kernel keeps its streams open), so a leader's hold or
   * promotion and a primary's push go on with the nodes that answer. Its next request
   * opens a new stream.
   */
  peerDown (peer: string): void {
    this.sessions.delete(peer)
    for (const session of [...this.streamsTo.get(peer) ?? []]) session.close(`node ${peer} was judged down`)
  }

  /**
   * The answering side: each request on the stream is handled as it comes (several may be
   * under way), its answer carries its id; the stream ends once the asker closed its end
   * and every answer is out. A frame that is not a valid request ends the stream at once.
   */
  private serve (stream: Stream, connection: Connection): void {
    const peer = connection.remotePeer.toString()
    this.served.add(stream)
    stream.addEventListener('close', () => { this.served.delete(stream) }, { once: true })
    let underway = 0
    let inputDone = false
    let refused = false
    const refuse = (why: string): void => {
      refused = true
      this.log.debug(`bad clone request from ${peer}: ${why}`)
      stream.abort(new Error(`bad clone request: ${why}`))
    }
    const finishIfDone = (): void => {
      if (inputDone && underway === 0 && stream.status === 'open') stream.close({ signal: AbortSignal.timeout(1000) }).catch(() => { stream.abort(new Error('clone answers sent')) })
    }
    const answer = (a: CloneAnswer): void => {
      underway--
      if (refused || stream.writeStatus !== 'writable') return
      try {
        writeFrame(stream, this.components.signer.sign('cell', CloneAnswer.encode(a)))
      } catch (err) {
        // the asker went away before its answer
        stream.abort(err as Error)
        return
      }
      finishIfDone()
    }
    readFrames(stream, this.maxFrameBytes + 4096, {
      onFrame: bytes => {
        if (refused) return
        const verified = this.verifier.verify(bytes, { remotePeer: peer, expect: 'cell' })
        if (!verified.ok) { refuse(verified.reason); return }
        let request: CloneRequest
        try {
          request = CloneRequest.decode(verified.payload)
        } catch {
          refuse('malformed')
          return
        }
        if (++underway > SESSION_REQUESTS) { refuse(`over ${SESSION_REQUESTS} requests under way`); return }
        const id = request.id
        this.handle(peer, request).then(
          a => { answer({ ...a, id }) },
          (err: Error) => { answer({ ...emptyAnswer(0), ok: false, error: err.message.split('\n')[0].slice(0, 300), id }) }
        )
      },
      onOversized: length => { this.log.debug(`bad clone request from ${peer}: frame of ${length} bytes over the limit`) },
      onClose: unread => {
        if (unread > 0 && !refused) refuse('truncated')
        inputDone = true
        finishIfDone()
      }
    })
  }

  /**
   * ms since a clone of `address` here last took a state to confirm, whether it is still
   * held or not (a confirmation already given outlives a drop); at most this service's age,
   * as one may have been given before a restart
   */
  private quietMs (address: string): number {
    return Math.max(0, Date.now() - (this.lastTook.get(address) ?? this.bornAt))
  }

  private async handle (peer: string, request: CloneAsk): Promise<CloneAnswer> {
    if (request.inventory != null) {
      const { app, address, epoch, primary } = request.inventory
      if (!/^[a-z0-9][a-z0-9-]{0,62}$/i.test(app) || (address !== '' && (!INSTANCE.test(address) || !address.startsWith(`${app}/`)))) throw new Error('invalid inventory request')
      if (address !== '') this.fence(peer, address, { epoch: Number(epoch), primary })
      const quiet = address === '' ? undefined : this.quietMs(address)
      return {
        ...emptyAnswer(0),
        copies: this.inventory(request.inventory.app).map(c => ({
          address: c.address,
          version: BigInt(Math.max(0, c.version)),
          epoch: BigInt(c.epoch),
          running: c.running,
          damaged: c.damaged === true,
          ...(c.address === address && quiet !== undefined ? { quietMs: BigInt(quiet) } : {})
        }))
      }
    }
    if (request.fetch != null) {
      const address = request.fetch.address
      if (!INSTANCE.test(address)) throw new Error('invalid fetch request')
      this.checkMember(peer, address)
      const running = this.components.runtime.cell(address)?.status === 'transformed' ? this.latest.get(address) : undefined
      if (running !== undefined) return { ...emptyAnswer(running.version), state: running.state, epoch: BigInt(this.epochOf(address)), replies: running.replies }
      const held = this.held.get(address) ?? this.kept.get(address)
      if (held?.state === undefined) throw new Error(`no copy of ${address} here`)
      return { ...emptyAnswer(held.version), state: held.state, epoch: BigInt(held.epoch), replies: held.replies ?? '' }
    }
    return emptyAnswer(await this.handleClone(peer, request))
  }

  private async handleClone (peer: string, request: CloneAsk): Promise<number> {
    if (request.hold != null) {
      const h = request.hold
      if (!INSTANCE.test(h.address) || h.bundle.byteLength !== 32) throw new Error('invalid hold request')
      this.checkMember(peer, h.address, h.owner)
      const bundle = Buffer.from(h.bundle).toString('hex')
      await this.components.bundles.fetch(bundle, { peers: [peer], signal: AbortSignal.timeout(this.init.timeout ?? 5000) })
      const previous = this.held.get(h.address)
      // held again: a copy kept since a drop is not built on (it may be from before the drop)
      this.kept.delete(h.address)
      const limits = h.memory > 0n ? { memory: Number(h.memory), timeout: h.timeout, mailbox: h.mailbox } : undefined
      // held again (a new leader's round, a shard's clone held before its placement names
      // it): what it holds stays, the reply window and the lease it granted included
      const named = h.primary === '' ? undefined : { primary: h.primary, epoch: Number(h.epoch) }
      const follows = named !== undefined && (previous?.follows === undefined || named.epoch >= previous.follows.epoch) ? named : previous?.follows
      const clone: HeldClone = { bundle, owner: h.owner, limits, state: previous?.state, version: previous?.version ?? -1, epoch: previous?.epoch ?? 0, replies: previous?.replies, confirmedAt: previous?.confirmedAt, heldAt: Date.now(), restored: false, fromDisk: previous?.fromDisk ?? false, follows }
      this.held.set(h.address, clone)
      await this.persist(h.address, clone, this.durabilityOf(h.address) === 'disk')
      // warm: the app's cell host runs before the promotion needs it
      this.components.runtime.prepare(h.address.slice(0, h.address.indexOf('/')))
      return previous?.version ?? 0
    }
    if (request.state != null) {
      const s = request.state
      const clone = this.held.get(s.address)
      if (clone === undefined) throw new Error(`no clone of ${s.address} here`)
      // a state taken before a recovery's fence may be confirmed after it
      this.lastTook.set(s.address, Date.now())
      const primary = followedPrimary(this.components.table.resolve(s.address), clone.follows)
      if (primary !== undefined && primary !== peer) throw new Error(`${peer} is not the primary of ${s.address}`)
      const epoch = Number(s.epoch)
      const fenced = fenceRefusal(this.fences.get(s.address), peer, epoch, this.components.table.resolve(s.address))
      if (fenced !== undefined) throw new Error(fenced)
      // a copy from disk is replaced by the first state of the primary the leader started
      // (from the newest copy it found); after that, only newer states of that primary
      // count (its epoch, read from its own table, may lag: the version orders its states)
      if (clone.fromDisk || Number(s.version) > clone.version) {
        const problem = replyWindowProblem(s.replies)
        if (problem !== undefined) throw new Error(`the state of ${s.address} came with a bad reply window: ${problem}`)
        clone.replies = s.replies === '' ? undefined : s.replies
        clone.state = s.state
        clone.version = Number(s.version)
        clone.epoch = Math.max(epoch, clone.epoch)
        clone.fromDisk = false
        this.damaged.delete(s.address)
        // disk: acknowledged once fsynced here; memory: once held here, the file follows
        const write = this.persist(s.address, clone, this.durabilityOf(s.address) === 'disk')
        if (this.durabilityOf(s.address) === 'disk') await write
        else write.catch(() => {})
        // promoted or dropped while the state was written: the old primary must not answer on
        // it. A hold repeated meanwhile (a new leader's round) replaced the record with a copy
        // made after the fields above were set, so it carries this state: still confirmed
        if (!this.held.has(s.address)) throw new Error(`no clone of ${s.address} here`)
      }
      clone.confirmedAt = Date.now()
      return clone.version
    }
    if (request.promote != null) {
      const address = request.promote.address
      // a copy kept since a drop, the newest a recovery found: held again to be promoted
      const kept = this.held.has(address) ? undefined : this.kept.get(address)
      if (kept !== undefined && this.kept.delete(address)) this.held.set(address, { ...kept, restored: false, heldAt: Date.now() })
      const asked = this.held.get(address)
      if (asked === undefined) throw new Error(`no clone of ${address} here`)
      this.checkMember(peer, address)
      const stale = this.staleStep(address, request.promote.epoch > 0n ? Number(request.promote.epoch) : undefined)
      if (stale !== undefined) throw new Error(stale)
      if (asked.restored && !this.assignedHere(address)) throw new Error(`the clone of ${address} was restored from disk and no announcement has confirmed it yet`)
      const bundle = await this.components.bundles.fetch(asked.bundle, { peers: [peer] })
      // the record as it is now, with every state received while the bundle was fetched;
      // from here on, states the old primary still sends are refused (no clone here), so
      // every state this clone acknowledged is in the state it is promoted with
      const clone = this.held.get(address)
      if (clone === undefined) throw new Error(`no clone of ${address} here`)
      if (clone.bundle !== asked.bundle) throw new Error(`the clone of ${address} changed code while being promoted`)
      this.held.delete(address)
      // the old primary may answer on this clone's last confirmation until its lease lapses:
      // the cell loads meanwhile and serves from then on
      const wait = (clone.confirmedAt ?? -Infinity) + (this.init.leaseMs ?? 1000) - Date.now()
      const leaseLapsed = wait > 0 ? new Promise<void>(resolve => setTimeout(resolve, wait)) : undefined
      try {
        await this.components.runtime.transform(address, bundle, { owner: clone.owner, limits: clone.limits, state: clone.state, version: clone.version < 0 ? undefined : clone.version, replies: clone.replies, replace: true, servesFrom: leaseLapsed })
      } catch (err) {
        if (!this.held.has(address)) this.held.set(address, clone)
        throw err
      }
      if (request.promote.epoch > 0n) this.runsAsPrimary(address, Number(request.promote.epoch))
      this.components.store?.remove(address).catch((err: Error) => { this.log.warn(`cannot remove the clone file of ${address}: ${err.message}`) })
      this.log.info(`promoted the clone of ${address} (${clone.version < 0 ? 'no state received yet' : `state version ${clone.version}`})`)
      return clone.version
    }
    throw new Error('empty clone request')
  }

  /** this node's running primaries of `app`, with their epochs and leases (fencing.ts supersededPrimaries) */
  localPrimaries (app: string): LocalPrimary[] {
    const now = Date.now()
    return this.components.runtime.cells().filter(c => c.app === app && c.status === 'transformed' && INSTANCE.test(c.address)).map(c => ({
      address: c.address,
      epoch: this.epochOf(c.address),
      leaseHolds: this.clonesOf(c.address).length > 0 && leaseHolds(this.confirmedAt.get(c.address) ?? -Infinity, now, this.init.leaseMs ?? 1000)
    }))
  }

  /**
   * A local primary learned it is superseded (a clone refused it for a newer epoch, or the
   * committed placement names another primary): its isolate stops now, without waiting for
   * a leader, and its newest state stays here as a copy, as if restored from disk: listed
   * by inventories and fetchable (recovery may need it), never run again but by a leader's
   * promotion, dropped once an announcement shows the instance running elsewhere.
   */
  async demote (address: string, why: string): Promise<void> {
    const cell = this.components.runtime.cell(address)
    const bundle = this.components.runtime.bundleOf(address)
    const latest = this.latest.get(address)
    // without a state noted here there is nothing to keep but the file: the leader's step ends it
    if (cell?.status !== 'transformed' || bundle === undefined || latest === undefined || this.demoting.has(address)) return
    this.demoting.add(address)
    try {
      const epoch = this.epochOf(address)
      const before = this.held.get(address)
      if (before === undefined || before.fromDisk || newer(epoch, latest.version, before.epoch, before.version)) {
        this.held.set(address, { bundle: bundle.hash, owner: bundle.owner, limits: cell.limits, state: latest.state, version: latest.version, epoch, replies: latest.replies, heldAt: Date.now(), restored: true, fromDisk: true, file: this.components.primaries?.fileOf(address) })
      }
      // its file on disk stays (a held copy's): the revert removes it only when nothing is held
      await this.primaryWrites.get(address)?.catch(() => {})
      await this.components.runtime.revert(address)
      this.log.info(`reverted the superseded primary of ${address} (${why}); its state (version ${latest.version}, epoch ${epoch}) stays here as a copy for a recovery`)
    } finally {
      this.demoting.delete(address)
    }
  }

  /** A recovery's inventory fences the instance here: only the newest epoch's fence counts. */
  private fence (peer: string, address: string, fence: InventoryFence): void {
    this.checkMember(peer, address)
    const before = this.fences.get(address)
    if (before === undefined || fence.epoch >= before.epoch) this.fences.set(address, fence)
  }

  /**
   * Why a leader's step for `address` in placement `epoch` is refused here: this node knows
   * a newer epoch of it, from an announcement or a recovery's inventory (fencing.ts staleEpochRefusal).
   */
  staleStep (address: string, epoch: number | undefined): string | undefined {
    const app = address.slice(0, address.indexOf('/'))
    const announced = Number(this.components.table.get(app)?.instances.find(i => i.address === address)?.epoch ?? 0n)
    return staleEpochRefusal(address, epoch, Math.max(announced, this.fences.get(address)?.epoch ?? 0))
  }

  /** whether the latest announcement of the instance's app places it or its clone on this node */
  private assignedHere (address: string): boolean {
    const self = this.components.signer.peerId
    const app = address.slice(0, address.indexOf('/'))
    const inst = this.components.table.get(app)?.instances.find(i => i.address === address)
    return inst !== undefined && (inst.node === self || inst.clones.includes(self))
  }

  /** Holds and promotions come from the app's leader (or a member of its group: see placement-authority.ts). */
  private checkMember (peer: string, address: string, owner?: Uint8Array): void {
    const refusal = placementRefusal(this.components.table, peer, address, owner)
    if (refusal !== undefined) throw new Error(refusal)
  }
}

/** whether (epoch, version) a is newer than b */
function newer (epochA: number, versionA: number, epochB: number, versionB: number): boolean {
  return epochA !== epochB ? epochA > epochB : versionA > versionB
}

function emptyAnswer (version: number): CloneAnswer {
  return { ok: true, error: '', version: BigInt(version), copies: [], state: '', epoch: 0n, replies: '', id: 0n }
}

/** why a reply window received with a state cannot be used ('' is none), or undefined */
function replyWindowProblem (replies: string): string | undefined {
  if (replies === '') return undefined
  try {
    decodeReplyWindow(replies)
    return undefined
  } catch (err) {
    return (err as Error).message
  }
}

export function createCloneService (components: CloneServiceComponents, init: CloneServiceInit): CloneService {
  return new CloneService(components, init)
}

/** a clone list as a key: the same clones in any order are the same set */
function cloneSet (clones: string[]): string {
  return [...clones].sort().join(',')
}
