// The topology service of one node (SPEC §2 "group"): hosts the Raft groups of the apps
// this node is a member of, runs the app state machine on their logs, and — where this
// node leads a group — places the app's cells and executes the placement through the
// messaging layer. Leaders announce each app's public state on `stem/<mesh>/leaders`;
// every node keeps the latest announcements in its AppTable (directory, listings,
// gateway routes) and reverts local cells an announcement no longer wants.
//
// Publishing a new app: the node that receives the owner's signed request picks up to 3
// members from the capacity view (itself included), bootstraps the group with them and
// proposes the manifest; the other members create the group when its first raft message
// reaches them (RaftHost.onUnknownGroup) and receive the log from the leader. Group ids
// are `<app>~<random>`: one per incarnation of the app, so the last messages of a
// dissolved group cannot bring it back, nor block a new group for the same app name.
import { randomBytes } from 'node:crypto'
import { mkdir, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { TypedEventEmitter } from '@libp2p/interface'
import type { Message as PubSubMessage } from '@libp2p/gossipsub'
import type { GossipSub } from '@libp2p/gossipsub'
import { DiskLogStorage } from '../raft/storage/disk-log-storage.js'
import type { RaftHost } from '../raft/multi/raft-host.js'
import { ConfChangeType, EntryType, StateRole } from '../raft/types.js'
import type { Entry, Message } from '../raft/types.js'
import type { CellRuntime } from '../cells/runtime.js'
import { decodeBundle } from '../cells/bundle.js'
import type { CellMessaging } from '../messaging/cell-messaging.js'
import type { BundleExchange } from '../messaging/code-exchange.js'
import { createFrameVerifier } from '../wire/frame.js'
import type { FrameSigner } from '../wire/frame.js'
import { createLogger } from '../util/logger.js'
import type { Logger } from '../util/logger.js'
import { activeCells, applyCommand, decodeCommand, encodeCommand } from './app-state.js'
import type { AppCommand, AppState, ApplyResult } from './app-state.js'
import type { AppTable } from './app-table.js'
import type { CloneService } from './clones.js'
import { decodeAppAnnouncement, encodeAppAnnouncement, MAX_ANNOUNCEMENT_BYTES } from './announcement.js'
import type { AppAnnouncement } from './announcement.js'
import { openOwnerRequest } from './owner-request.js'
import { pickGroupMembers } from './group-members.js'
import { place } from './placement.js'
import type { DesiredApp, Placement } from './placement-accounting.js'
import { planReconcile } from './reconcile.js'
import type { ReconcileStep, Role, RunningCopy } from './reconcile.js'
import { instanceAddress } from './types.js'
import type { NodeCapacity } from './types.js'

export interface TopologyServiceComponents {
  self: string
  raft: RaftHost
  runtime: CellRuntime
  messaging: CellMessaging
  bundles: BundleExchange
  clones: CloneService
  /** where this node keeps the apps' announcements (also messaging's directory) */
  table: AppTable
  pubsub: GossipSub
  /** signs this node's announcements */
  signer: FrameSigner
  /** the live nodes of the capacity view, this node included */
  nodes: () => NodeCapacity[]
  logger?: Logger
}

export interface TopologyServiceInit {
  mesh: string
  /** one directory per hosted group: <groupsDir>/<app> */
  groupsDir: string
  /** ms between controller rounds of the groups this node leads (default 250) */
  controlInterval?: number
  /** ms between repeated announcements of an unchanged app (default 2000) */
  announceInterval?: number
  /** ms a proposal may wait for its group (default 15 s) */
  proposalTimeout?: number
  /** ms a group member must be missing from the capacity view before the leader replaces it (default 10 s) */
  memberSuspicionMs?: number
}

export interface TopologyEvents {
  /** the known state of an app changed (announcement applied); detail: the app's name */
  'app:changed': CustomEvent<{ app: string, announcement: AppAnnouncement }>
  /** an app was reverted and forgotten */
  'app:removed': CustomEvent<{ app: string }>
}

export interface PublishResult {
  app: string
  /** false: the manifest equals the running one, nothing changed */
  changed: boolean
}

type InstanceState = 'starting' | 'transformed' | 'failed'

/** one copy the leader started: `<address> <node>` → this */
interface RunningCopyState {
  address: string
  node: string
  role: Role
  revision: string
  state: InstanceState
}

const copyKey = (address: string, node: string): string => `${address} ${node}`

interface HostedApp {
  group: string
  app: string
  storage: DiskLogStorage
  state?: AppState
  /** copies this node started as leader (its view of what runs) */
  running: Map<string, RunningCopyState>
  busy: boolean
  version: bigint
  lastAnnounced: number
  revertAnnouncements: number
  dissolved: boolean
  /** when the leader last proposed a membership change */
  lastConfChange: number
}

const GROUP_ID = /^([a-z0-9][a-z0-9-]{0,62})~[0-9a-f]{8}$/i
const REVERT_ANNOUNCEMENTS = 3
/** a membership change proposed by a leader gets this long to commit before the next try */
const CONF_CHANGE_RETRY_MS = 2000
/** a proposal not applied after this long is proposed again */
const PROPOSAL_RETRY_MS = 2000

function revisionOf (state: AppState, cell: string): string {
  const spec = state.manifest.cells[cell]
  return `${spec.bundle ?? ''}:${spec.memory}:${spec.timeout}:${spec.mailbox}`
}

export class TopologyService extends TypedEventEmitter<TopologyEvents> {
  readonly table: AppTable
  readonly topic: string
  private readonly log: Logger
  private readonly hosted = new Map<string, HostedApp>()
  private readonly opening = new Map<string, Promise<HostedApp>>()
  private readonly waiters = new Map<string, (result: ApplyResult) => void>()
  /** groups this node left: their members' last messages must not bring them back */
  private readonly dissolvedGroups = new Set<string>()
  private readonly verifier = createFrameVerifier({ maxBytes: MAX_ANNOUNCEMENT_BYTES + 1024, name: 'leaders' })
  /** peer → since when it has been missing from the capacity view (suspicion before verdict) */
  private readonly missingSince = new Map<string, number>()
  private startedAt = 0
  private timer?: NodeJS.Timeout
  private running = false
  private readonly onMessage = (evt: CustomEvent<PubSubMessage>): void => {
    if (evt.detail.topic === this.topic) this.receive(evt.detail.data)
  }

  constructor (private readonly components: TopologyServiceComponents, private readonly init: TopologyServiceInit) {
    super()
    this.table = components.table
    this.topic = `stem/${init.mesh}/leaders`
    this.log = components.logger ?? createLogger('topology')
  }

  /** frames refused by this protocol's verifier, by reason (metrics) */
  rejections (): Record<string, number> {
    return this.verifier.counts()
  }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    this.startedAt = Date.now()
    await mkdir(this.init.groupsDir, { recursive: true })
    for (const name of await readdir(this.init.groupsDir)) {
      if (GROUP_ID.test(name)) await this.openGroup(name)
    }
    this.components.pubsub.subscribe(this.topic)
    this.components.pubsub.addEventListener('message', this.onMessage)
    this.timer = setInterval(() => { this.control() }, this.init.controlInterval ?? 250)
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    clearInterval(this.timer)
    this.components.pubsub.removeEventListener('message', this.onMessage)
    try { this.components.pubsub.unsubscribe(this.topic) } catch {}
    for (const [group, h] of this.hosted) {
      await this.components.raft.removeGroup(group)
      await h.storage.close().catch(() => {})
    }
    this.hosted.clear()
  }

  /** For RaftHost.onUnknownGroup: a raft message for a group this node does not host yet. */
  readonly onUnknownGroup = (group: string, from: string, message: Message): void => {
    if (!this.running || !GROUP_ID.test(group) || this.hosted.has(group) || this.opening.has(group) || this.dissolvedGroups.has(group)) return
    this.log.info(`joining raft group ${group} (first message from ${from}, type ${message.type})`)
    this.openGroup(group).catch(err => { this.log.warn(`cannot host the group of app ${group}: ${(err as Error).message}`) })
  }

  /**
   * A node went away (connection closed, capacity advert expired or left): as leader, this
   * node no longer counts on the copies it started there, so the next controller round
   * starts them again (where the placement still wants them) or places them elsewhere.
   */
  forgetPeer (peer: string): void {
    for (const h of this.hosted.values()) {
      for (const [key, r] of h.running) if (r.node === peer) h.running.delete(key)
    }
  }

  /** apps whose groups this node is a member of */
  hostedApps (): string[] {
    return [...this.hosted.values()].filter(h => h.state !== undefined && !h.dissolved).map(h => h.app).sort()
  }

  /** the live group of `app` hosted here */
  private groupOf (app: string): HostedApp | undefined {
    return [...this.hosted.values()].find(h => h.app === app && !h.dissolved)
  }

  /** Verifies an owner-signed publish with its bundles, creates the app's group if needed, and commits the manifest. */
  async publish (signed: unknown, encodedBundles: Uint8Array[], signal?: AbortSignal): Promise<PublishResult> {
    const opened = await openOwnerRequest(signed)
    const request = opened.request
    if (request.op !== 'publish') throw new Error(`expected a publish request, got ${request.op}`)
    const manifest = request.manifest
    const known = this.table.get(request.app)
    if (known !== undefined && known.owner !== opened.owner) throw new Error(`app ${request.app} already exists and belongs to owner ${known.owner}: choose another app name`)
    const hashes = new Set<string>()
    for (const bytes of encodedBundles) {
      const bundle = decodeBundle(bytes)
      const spec = manifest.cells[bundle.cell]
      if (bundle.app !== request.app || spec === undefined || spec.bundle !== bundle.hash) throw new Error(`bundle ${bundle.app}/${bundle.cell} is not one of the manifest's cells`)
      if (Buffer.from(bundle.owner).toString('base64') !== opened.ownerKey) throw new Error(`bundle of cell ${bundle.cell} is not signed by the owner of the request`)
      await this.components.bundles.publish(bytes, { signal: AbortSignal.timeout(5000) })
      hashes.add(bundle.hash)
    }
    for (const [cell, spec] of Object.entries(manifest.cells)) {
      if (spec.bundle === undefined || !/^[0-9a-f]{64}$/.test(spec.bundle)) throw new Error(`cell ${cell} has no bundle hash`)
      if (!hashes.has(spec.bundle) && !(await this.components.bundles.fetch(spec.bundle, { signal: AbortSignal.timeout(10_000) }).then(() => true, () => false))) {
        throw new Error(`bundle of cell ${cell} was not sent and is not in the mesh`)
      }
    }
    let hosted = this.groupOf(request.app)
    if (hosted === undefined) {
      if (known !== undefined) throw new Error(`app ${request.app} is governed by nodes ${known.members.join(', ')}: publish through one of them`)
      const members = pickGroupMembers(this.components.nodes(), 3, [this.components.self])
      hosted = await this.openGroup(`${request.app}~${randomBytes(4).toString('hex')}`, members)
      this.log.info(`app ${request.app}: formed raft group ${hosted.group} on ${members.join(', ')}`)
    }
    const result = await this.propose(hosted.group, { id: newId(), kind: 'publish', owner: opened.owner, ownerKey: opened.ownerKey, at: request.at, manifest }, signal)
    if (!result.ok) throw new Error(result.error ?? 'refused')
    return { app: request.app, changed: result.changed }
  }

  /** An owner-signed scale or revert. */
  async ownerCommand (signed: unknown, signal?: AbortSignal): Promise<{ changed: boolean }> {
    const opened = await openOwnerRequest(signed)
    const request = opened.request
    if (request.op === 'publish') throw new Error('publish requests go to /v1/publish')
    const known = this.table.get(request.app)
    const hosted = this.groupOf(request.app)
    if (hosted === undefined) {
      if (known === undefined) throw new Error(`no app named ${request.app}`)
      throw new Error(`app ${request.app} is governed by nodes ${known.members.join(', ')}: send this through one of them`)
    }
    const owner = { id: newId(), owner: opened.owner, ownerKey: opened.ownerKey, at: request.at }
    const cmd: AppCommand = request.op === 'scale'
      ? { ...owner, kind: 'scale', cell: request.cell, replicas: request.replicas }
      : { ...owner, kind: 'revert', cell: request.cell }
    const result = await this.propose(hosted.group, cmd, signal)
    if (!result.ok) throw new Error(result.error ?? 'refused')
    return { changed: result.changed }
  }

  // ---- groups and the state machine

  private async openGroup (group: string, bootstrap?: string[]): Promise<HostedApp> {
    const existing = this.hosted.get(group) ?? this.opening.get(group)
    if (existing !== undefined) return await existing
    const app = (GROUP_ID.exec(group) as RegExpExecArray)[1]
    const opening = (async () => {
      const storage = await DiskLogStorage.open(join(this.init.groupsDir, group))
      const h: HostedApp = { group, app, storage, running: new Map(), busy: false, version: BigInt(Date.now()), lastAnnounced: 0, revertAnnouncements: 0, dissolved: false, lastConfChange: 0 }
      this.components.raft.addGroup(group, { storage, bootstrap, apply: entries => { this.apply(h, entries) } })
      this.hosted.set(group, h)
      return h
    })()
    this.opening.set(group, opening)
    try {
      return await opening
    } finally {
      this.opening.delete(group)
    }
  }

  private apply (h: HostedApp, entries: Entry[]): void {
    for (const entry of entries) {
      if (entry.type !== EntryType.Normal || entry.data.byteLength === 0) continue
      let cmd: AppCommand
      try {
        cmd = decodeCommand(entry.data)
      } catch (err) {
        this.log.warn(`app ${h.app}: skipping log entry ${entry.index}: ${(err as Error).message}`)
        continue
      }
      const { state, result } = applyCommand(h.state, cmd)
      h.state = state
      if (!result.ok && cmd.kind !== 'place') this.log.info(`app ${h.app}: refused ${cmd.kind}: ${result.error ?? ''}`)
      this.waiters.get(cmd.id)?.(result)
      this.waiters.delete(cmd.id)
      if (result.changed) h.lastAnnounced = 0
      if (cmd.kind === 'dissolve' && result.ok && state === undefined) this.dissolve(h)
    }
  }

  private dissolve (h: HostedApp): void {
    if (h.dissolved) return
    h.dissolved = true
    this.dissolvedGroups.add(h.group)
    this.log.info(`app ${h.app} reverted: leaving raft group ${h.group}`)
    setImmediate(() => {
      void (async () => {
        await this.components.raft.removeGroup(h.group)
        await h.storage.close().catch(() => {})
        await rm(join(this.init.groupsDir, h.group), { recursive: true, force: true })
        this.hosted.delete(h.group)
      })().catch(err => { this.log.warn(`app ${h.app}: cannot remove its raft log: ${(err as Error).message}`) })
    })
  }

  private async propose (group: string, cmd: AppCommand, signal?: AbortSignal): Promise<ApplyResult> {
    const app = (GROUP_ID.exec(group) as RegExpExecArray)[1]
    const { promise, resolve, reject } = Promise.withResolvers<ApplyResult>()
    const deadline = Date.now() + (this.init.proposalTimeout ?? 15_000)
    let retry: NodeJS.Timeout | undefined
    const finish = (): void => {
      clearTimeout(retry)
      clearTimeout(timeout)
      this.waiters.delete(cmd.id)
      signal?.removeEventListener('abort', onAbort)
    }
    const onAbort = (): void => { finish(); reject(new Error(`${cmd.kind} of app ${app} aborted`)) }
    const timeout = setTimeout(() => { finish(); reject(new Error(`app ${app}: no answer from its raft group in time (no leader elected? are its members up?)`)) }, deadline - Date.now())
    signal?.addEventListener('abort', onAbort, { once: true })
    this.waiters.set(cmd.id, result => { finish(); resolve(result) })
    const attempt = (): void => {
      if (!this.components.raft.hasGroup(group)) { finish(); reject(new Error(`this node left the group of app ${app}`)); return }
      try {
        this.components.raft.propose(group, encodeCommand(cmd))
        // raft may drop a proposal (forwarded to a leader that just lost its role): propose
        // it again if it has not been applied by then. Applying a command twice is harmless:
        // the waiter takes the first result, and the second is a no-op or a refused replay.
        retry = setTimeout(attempt, PROPOSAL_RETRY_MS)
      } catch {
        // no leader known yet: try again shortly
        retry = setTimeout(attempt, 100)
      }
    }
    attempt()
    return await promise
  }

  // ---- the leader's controller

  private control (): void {
    this.suspect()
    for (const h of this.hosted.values()) {
      if (h.busy || h.dissolved || !this.components.raft.hasGroup(h.group)) continue
      const status = this.components.raft.status(h.group)
      if (status.role !== StateRole.Leader) {
        h.running.clear()
        continue
      }
      h.busy = true
      this.reconcile(h).catch(err => { this.log.warn(`app ${h.app}: ${(err as Error).message}`) }).finally(() => { h.busy = false })
    }
  }

  /** Notes since when each group member has been missing from the capacity view. */
  private suspect (): void {
    const live = new Set(this.components.nodes().filter(n => n.alive).map(n => n.id))
    const members = new Set<string>()
    for (const h of this.hosted.values()) {
      if (this.components.raft.hasGroup(h.group)) for (const m of this.components.raft.status(h.group).members) members.add(m)
    }
    const now = Date.now()
    for (const peer of [...this.missingSince.keys()]) if (live.has(peer) || !members.has(peer)) this.missingSince.delete(peer)
    for (const peer of members) if (!live.has(peer) && !this.missingSince.has(peer)) this.missingSince.set(peer, now)
  }

  /**
   * The leader replaces a member that has been missing long enough: first removes it (the
   * live members keep their quorum), then adds the best live node not in the group, one
   * membership change at a time. A node that just started waits the same time before
   * judging, as its capacity view is still filling.
   */
  private replaceDeadMembers (h: HostedApp): void {
    const verdictAfter = this.init.memberSuspicionMs ?? 10_000
    const now = Date.now()
    if (now - this.startedAt < verdictAfter || now - h.lastConfChange < CONF_CHANGE_RETRY_MS) return
    const status = this.components.raft.status(h.group)
    const dead = status.members.find(m => m !== this.components.self && now - (this.missingSince.get(m) ?? now) >= verdictAfter)
    const live = status.members.filter(m => !this.missingSince.has(m))
    const add = dead === undefined ? pickGroupMembers(this.components.nodes(), 3, live).find(m => !status.members.includes(m)) : undefined
    const change = dead !== undefined ? { type: ConfChangeType.RemoveNode, node: dead } : add !== undefined ? { type: ConfChangeType.AddNode, node: add } : undefined
    if (change === undefined) return
    h.lastConfChange = now
    try {
      this.components.raft.proposeConfChange(h.group, change)
      this.log.info(`app ${h.app}: ${change.type === ConfChangeType.RemoveNode ? 'removing lost member' : 'adding member'} ${change.node}`)
    } catch (err) {
      // another change is still pending: try again next round
      this.log.debug(`app ${h.app}: membership change deferred: ${(err as Error).message}`)
    }
  }

  private async reconcile (h: HostedApp): Promise<void> {
    const state = h.state
    if (state === undefined) return
    this.replaceDeadMembers(h)
    if (state.dissolving) {
      if (this.announceDue(h)) {
        this.announce(h, state)
        if (++h.revertAnnouncements >= REVERT_ANNOUNCEMENTS) await this.propose(h.group, { id: newId(), kind: 'dissolve' })
      }
      return
    }
    const cells = activeCells(state)
    const desired: DesiredApp = { app: state.app, cells: {} }
    for (const cell of cells) desired.cells[cell] = { replicas: state.manifest.cells[cell].replicas, clones: state.manifest.cells[cell].clones, memory: state.manifest.cells[cell].memory }
    const current: Placement = {}
    for (const cell of cells) current[cell] = state.placement[cell] ?? []
    const result = place({ desired, current, nodes: this.components.nodes(), rebalance: { maxMoves: 0 } })
    if (JSON.stringify(result.placement) !== JSON.stringify(current) || cells.some(c => state.placement[c] === undefined)) {
      await this.propose(h.group, { id: newId(), kind: 'place', placement: result.placement })
      return
    }
    const revisions: Record<string, string> = {}
    for (const cell of cells) revisions[cell] = revisionOf(state, cell)
    const actual: RunningCopy[] = []
    for (const r of h.running.values()) {
      const m = /^[^/]+\/([^#]+)#(\d+)$/.exec(r.address)
      if (m !== null && r.state !== 'failed') actual.push({ cell: m[1], index: Number(m[2]), role: r.role, node: r.node, revision: r.revision })
    }
    const steps = planReconcile({ app: state.app, placement: state.placement, revisions }, actual)
    if (steps.length > 0 || this.announceDue(h)) this.announce(h, state)
    const waves = [...new Set(steps.map(s => s.wave))].sort((a, b) => a - b)
    for (const wave of waves) {
      await Promise.all(steps.filter(s => s.wave === wave).map(async step => { await this.execute(h, state, step) }))
      this.announce(h, state)
    }
  }

  private async execute (h: HostedApp, state: AppState, step: ReconcileStep): Promise<void> {
    const cell = /^[^/]+\/([^#]+)#/.exec(step.address)?.[1] as string
    const spec = state.manifest.cells[cell]
    const owner = Buffer.from(state.ownerKey, 'base64')
    const limits = { memory: spec.memory, timeout: spec.timeout, mailbox: spec.mailbox }
    const revision = revisionOf(state, cell)
    const mark = (node: string, role: Role, s: InstanceState): void => { h.running.set(copyKey(step.address, node), { address: step.address, node, role, revision, state: s }) }
    try {
      switch (step.kind) {
        case 'start':
        case 'update':
          mark(step.node, step.role, 'starting')
          // the leader holds the bundle before it asks others to fetch it from it
          await this.components.bundles.fetch(spec.bundle as string, { peers: this.components.raft.status(h.group).members.filter(m => m !== this.components.self), signal: AbortSignal.timeout(20_000) })
          if (step.role === 'clone') await this.components.clones.hold(step.node, step.address, spec.bundle as string, owner, limits)
          else if (step.kind === 'update' || !(await this.promoteIfHeld(step.node, step.address))) await this.startPrimary(step.address, step.node, spec.bundle as string, owner, limits)
          mark(step.node, step.role, 'transformed')
          break
        case 'promote':
          await this.components.clones.promote(step.node, step.address)
          mark(step.node, 'primary', 'transformed')
          break
        case 'handover':
          // the new primary's clone holds every acknowledged state: it takes over, and the
          // old primary reverts itself once the announcement shows the new one running
          await this.components.clones.promote(step.node, step.address)
          h.running.delete(copyKey(step.address, step.from))
          mark(step.node, 'primary', 'transformed')
          break
        case 'stop':
          h.running.delete(copyKey(step.address, step.node))
          break
      }
      if (step.kind !== 'stop') this.log.info(`app ${h.app}: ${step.kind} ${step.address} on ${step.node}`)
    } catch (err) {
      if (step.kind !== 'stop') mark(step.node, step.kind === 'start' || step.kind === 'update' ? step.role : 'primary', 'failed')
      this.log.warn(`app ${h.app}: cannot ${step.kind} ${step.address} on ${step.node}: ${(err as Error).message}`)
    }
  }

  /**
   * A new primary starts from the clone its node holds, if any: a leader that took over
   * from a dead one does not know which copies run, but the clone nodes do.
   */
  private async promoteIfHeld (node: string, address: string): Promise<boolean> {
    try {
      await this.components.clones.promote(node, address)
      return true
    } catch (err) {
      if (/no clone of/.test((err as Error).message)) return false
      throw err
    }
  }

  private async startPrimary (address: string, node: string, bundleHash: string, owner: Uint8Array, limits: { memory: number, timeout: number, mailbox: number }): Promise<void> {
    if (node === this.components.self) {
      const bundle = await this.components.bundles.fetch(bundleHash, { signal: AbortSignal.timeout(20_000) })
      await this.components.runtime.transform(address, bundle, { owner, limits, replace: true })
    } else {
      await this.components.messaging.transformRemote(node, { address, bundle: bundleHash, owner, limits, replace: true }, { deadline: Date.now() + 30_000 })
    }
  }

  // ---- announcements

  private announceDue (h: HostedApp): boolean {
    return Date.now() - h.lastAnnounced >= (this.init.announceInterval ?? 2000)
  }

  private announce (h: HostedApp, state: AppState): void {
    const status = this.components.raft.status(h.group)
    h.lastAnnounced = Date.now()
    h.version++
    const cells = activeCells(state)
    const announcement: AppAnnouncement = {
      app: state.app,
      owner: state.owner,
      leader: this.components.self,
      term: BigInt(status.term),
      version: h.version,
      members: [...status.members].sort(),
      instances: cells.flatMap(cell => Array.from({ length: state.manifest.cells[cell].replicas }, (_, i) => {
        const address = instanceAddress(state.app, cell, i)
        const placed = state.placement[cell]?.[i]
        const node = placed?.primary ?? ''
        const r = h.running.get(copyKey(address, node))
        return {
          address,
          node,
          epoch: BigInt(state.epochs[address] ?? 0),
          state: node === '' ? 'pending' : r?.role === 'primary' ? r.state : 'starting',
          clones: placed?.clones ?? [],
          clonesReady: (placed?.clones ?? []).filter(c => h.running.get(copyKey(address, c))?.state === 'transformed')
        }
      })),
      cells: cells.map(name => ({ name, replicas: state.manifest.cells[name].replicas, timeout: state.manifest.cells[name].timeout })),
      routes: state.manifest.routes.filter(r => cells.includes(r.cell)).map(r => ({ method: r.method, path: r.path, cell: r.cell, handler: r.handler })),
      reverted: state.dissolving
    }
    this.learn(announcement)
    const frame = this.components.signer.sign('leaders', encodeAppAnnouncement(announcement))
    this.components.pubsub.publish(this.topic, frame).catch(err => { this.log.debug(`announcing app ${h.app} failed: ${(err as Error).message}`) })
  }

  private receive (data: Uint8Array): void {
    const verified = this.verifier.verify(data, { forwarded: true, expect: 'leaders' })
    if (!verified.ok) return
    let announcement: AppAnnouncement
    try {
      announcement = decodeAppAnnouncement(verified.payload)
    } catch (err) {
      this.log.debug(`dropped an announcement from ${verified.sender}: ${(err as Error).message}`)
      return
    }
    if (announcement.leader !== verified.sender) return
    this.learn(announcement)
  }

  /** Applies an announcement (ours or a leader's) to the table and to this node's cells. */
  private learn (a: AppAnnouncement): void {
    if (!this.table.update(a)) return
    if (a.reverted) this.safeDispatchEvent('app:removed', { detail: { app: a.app } })
    else this.safeDispatchEvent('app:changed', { detail: { app: a.app, announcement: a } })
    this.revertUnwanted(a)
  }

  /** Reverts this node's cells of the app that the announcement no longer places here. */
  private revertUnwanted (a: AppAnnouncement): void {
    const prefix = `${a.app}/`
    const replicas = new Map(a.cells.map(c => [c.name, c.replicas]))
    for (const cell of this.components.runtime.cells()) {
      if (!cell.address.startsWith(prefix) || cell.status !== 'transformed') continue
      const m = /^[^/]+\/([^#]+)#(\d+)$/.exec(cell.address)
      if (m === null) continue
      const inst = a.instances.find(i => i.address === cell.address)
      const unwanted = a.reverted || (replicas.get(m[1]) ?? 0) <= Number(m[2]) ||
        // fencing: another node now runs this instance (the leader saw it start there)
        (inst !== undefined && inst.node !== '' && inst.node !== this.components.self && inst.state === 'transformed')
      if (!unwanted) continue
      this.log.info(`reverting ${cell.address}: app ${a.app} no longer places it here`)
      this.components.runtime.revert(cell.address).catch(err => { this.log.debug(`revert of ${cell.address}: ${(err as Error).message}`) })
    }
  }
}

function newId (): string {
  return randomBytes(12).toString('hex')
}

export function createTopologyService (components: TopologyServiceComponents, init: TopologyServiceInit): TopologyService {
  return new TopologyService(components, init)
}
