// The topology service of one node (SPEC §2 "group"): the composition of the app groups
// this node is a member of (app-groups.ts), the leader's controller that places and runs
// their cells (app-controller.ts), and the announcements on `stem/<mesh>/leaders` that
// tell every node where each app runs (announcer.ts), with the leaders' reservations that
// keep apps from oversubscribing a node (reservation-sync.ts). Its own job: the owner's signed
// requests — publish, scale, revert.
//
// Publishing a new app: the node that receives the owner's signed request picks up to 3
// members from the capacity view (itself included), bootstraps the group with them and
// proposes the manifest. A request for an existing app that this node does not govern is
// forwarded to a member of the app's group (owner-forwarder.ts), which verifies it as its
// own API would.
import { TypedEventEmitter } from '@libp2p/interface'
import type { Libp2p } from '@libp2p/interface'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Message } from '../raft/types.js'
import { decodeBundle } from '../cells/bundle.js'
import type { FrameSigner } from '../wire/frame.js'
import { createLogger } from '../util/logger.js'
import type { Logger } from '../util/logger.js'
import type { AppCommand } from './app-state.js'
import type { AppTable } from './app-table.js'
import type { CloneService } from './clones.js'
import type { AppAnnouncement } from './announcement.js'
import { AppAnnouncer } from './announcer.js'
import { AppController } from './app-controller.js'
import { AppGroups, newId } from './app-groups.js'
import { ReservationSync } from './reservation-sync.js'
import type { ReservationSyncInit } from './reservation-sync.js'
import { checkAcceptLoss, openOwnerRequest } from './owner-request.js'
import type { SignedOwnerRequest } from './owner-request.js'
import { createOwnerForwarder, NotMemberError } from './owner-forwarder.js'
import type { OwnerForwarder } from './owner-forwarder.js'
import { pickGroupMembers } from './group-members.js'
import { leaveGracefully } from './graceful-leave.js'
import type { LeaveOutcome } from './graceful-leave.js'
import { instanceAddress } from './types.js'
import type { NodeCapacity } from './types.js'
import type { HostedApp } from './app-groups.js'
import type { AnsweringPort, BundlePort, CapacityPort, CellRuntimePort, LeftPort, MessagingPort, RaftPort } from './ports.js'
import type { PartitionInfoPort } from './streams/autoscaler.js'
import type { AutoscaleTiming } from './streams/autoscale.js'

export interface TopologyServiceComponents {
  self: string
  /** serves and sends forwarded owner requests (/stem/<mesh>/owner/1) */
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'>
  raft: RaftPort
  runtime: CellRuntimePort
  messaging: MessagingPort
  bundles: BundlePort
  clones: CloneService
  /** where this node keeps the apps' announcements (also messaging's directory) */
  table: AppTable
  pubsub: GossipSub
  /** signs this node's announcements */
  signer: FrameSigner
  /** the live nodes of the capacity view, this node included */
  nodes: CapacityPort
  /** whether a peer answers on an open connection now (the failure detector) */
  answering?: AnsweringPort
  /** whether a peer said it is leaving the mesh (the capacity view) */
  left?: LeftPort
  /** whether the instance at `address` on `node` is advertised failed (see CapacityAdvert.conditions) */
  failed?: (address: string, node: string) => boolean
  /** a stream partition's `info` wherever it runs (the autoscale of consumers reads their lag) */
  partitionInfo?: PartitionInfoPort
  logger?: Logger
}

export interface TopologyServiceInit extends ReservationSyncInit {
  mesh: string
  /** one directory per hosted group: <groupsDir>/<group> */
  groupsDir: string
  /** ms between controller rounds of the groups this node leads (default 250) */
  controlInterval?: number
  /** ms between repeated announcements of an unchanged app (default 2000) */
  announceInterval?: number
  /** ms a proposal may wait for its group (default 15 s) */
  proposalTimeout?: number
  /** ms a group member must be missing from the capacity view before the leader replaces it (default 10 s) */
  memberSuspicionMs?: number
  /** windows of the autoscale of stream consumers (streams/autoscale.ts defaults) */
  autoscale?: Partial<AutoscaleTiming>
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

export class TopologyService extends TypedEventEmitter<TopologyEvents> {
  readonly table: AppTable
  readonly topic: string
  private readonly log: Logger
  private readonly groups: AppGroups
  private readonly announcer: AppAnnouncer
  private readonly controller: AppController
  private readonly forwarder: OwnerForwarder
  /** app → owner clock of the last accept-loss this node carried out as leader (owner-request.ts checkAcceptLoss) */
  private readonly acceptedLossAt = new Map<string, number>()
  /** leaving gracefully: this node no longer places work on itself */
  private leaving = false
  private running = false

  constructor (private readonly components: TopologyServiceComponents, init: TopologyServiceInit) {
    super()
    this.table = components.table
    this.log = components.logger ?? createLogger('topology')
    const logger = this.log
    this.groups = new AppGroups({ raft: components.raft, logger }, init)
    const reservations = new ReservationSync({
      table: components.table,
      nodes: components.nodes,
      publish: a => { this.announcer.announceReservations(a) },
      logger,
      newId: () => newId(8)
    }, init)
    this.announcer = new AppAnnouncer({
      ...components,
      logger,
      learned: a => {
        reservations.learned(a)
        if (a.reverted) this.safeDispatchEvent('app:removed', { detail: { app: a.app } })
        else this.safeDispatchEvent('app:changed', { detail: { app: a.app, announcement: a } })
      },
      reservations: (a, sender) => { reservations.receive(a, sender) },
      revertMoved: async (address, why) => {
        await components.clones.demote(address, why)
        // nothing noted to keep (demote leaves the cell as it was): a plain revert
        if (components.runtime.cell(address)?.status === 'transformed') await components.runtime.revert(address)
      }
    }, init)
    this.topic = this.announcer.topic
    // a leaving node that still leads places nothing on itself, and moves what runs here
    const nodes = (): NodeCapacity[] => this.leaving ? components.nodes().filter(n => n.id !== components.self) : components.nodes()
    // a node that is leaving itself gives up no one else's seat: when a whole mesh stops,
    // groups keep their members for when it comes back (even without one of them)
    const left = (peer: string): boolean => !this.leaving && components.left?.(peer) === true
    this.controller = new AppController({ ...components, nodes, left, logger, groups: this.groups, announcer: this.announcer, reservations }, init)
    this.forwarder = createOwnerForwarder({ libp2p: components.libp2p, signer: components.signer, logger, handle: async (signed, from, signal) => await this.handleForwarded(signed, from, signal) }, init)
  }

  /** announcements refused by the leaders topic's verifier, by reason (metrics) */
  rejections (): Record<string, number> {
    return this.announcer.rejections()
  }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    await this.groups.start()
    this.announcer.start()
    this.controller.start()
    await this.forwarder.start()
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    await this.forwarder.stop()
    this.controller.stop()
    this.announcer.stop()
    await this.groups.stop()
  }

  /**
   * Graceful leave (graceful-leave.ts): hands this node's leaderships to other members and
   * waits until its instances run elsewhere, up to `signal`. Call after the node's capacity
   * advert said it is leaving, and before stop().
   */
  async leave (signal: AbortSignal): Promise<LeaveOutcome> {
    this.leaving = true
    const { self, raft, runtime, table } = this.components
    const others = (): string[] => this.components.nodes().filter(n => n.alive && n.id !== self).map(n => n.id)
    return await leaveGracefully({ self, raft, runtime, table, groups: this.groups, others, logger: this.log }, signal)
  }

  /**
   * For RaftHost.admits: whether `peer` belongs to `group` as the app's newest signed
   * announcement says (its leader or a member), whatever this node's log says.
   */
  readonly admitsToGroup = (group: string, peer: string): boolean => {
    const h = this.groups.all().find(x => x.group === group)
    const a = h === undefined || h.dissolved ? undefined : this.components.table.get(h.app)
    return a !== undefined && !a.reverted && (a.leader === peer || a.members.includes(peer))
  }

  /** For RaftHost.onUnknownGroup: a raft message for a group this node does not host yet. */
  readonly onUnknownGroup = (group: string, from: string, message: Message): void => {
    this.groups.joinOnFirstMessage(group, from, message)
  }

  /** A node went away or came back (maybe restarted blank): the leader's controller stops counting on the copies it started there. */
  forgetPeer (peer: string): void {
    this.controller.forgetPeer(peer)
  }

  /** This node was just elected leader of a group: its controller runs a round now rather than at the next interval. */
  elected (): void {
    this.controller.roundSoon()
  }

  /** the failure detector judged `peer` down (AppController.peerDown) */
  peerDown (peer: string): void {
    this.controller.peerDown(peer)
  }

  /** apps whose groups this node is a member of */
  hostedApps (): string[] {
    return this.groups.all().filter(h => h.state !== undefined && !h.dissolved).map(h => h.app).sort()
  }

  /**
   * Verifies an owner-signed publish with its bundles, creates the app's group if needed, and
   * commits the manifest — or forwards it to the app's group if this node is not a member.
   * `forwardedBy`: the request came from that node (which holds its bundles), not from this node's API.
   */
  async publish (signed: unknown, encodedBundles: Uint8Array[], signal?: AbortSignal, forwardedBy?: string): Promise<PublishResult> {
    const opened = await openOwnerRequest(signed)
    const request = opened.request
    if (request.op !== 'publish') throw new Error(`expected a publish request, got ${request.op}`)
    const manifest = request.manifest
    const known = this.table.get(request.app)
    if (known !== undefined && known.owner !== opened.owner) throw new Error(`app ${request.app} already exists and belongs to owner ${known.owner}: choose another app name`)
    let hosted = this.groups.ofApp(request.app)
    if (hosted === undefined && forwardedBy !== undefined) throw new NotMemberError(`this node is not in the group of app ${request.app}`)
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
      if (!hashes.has(spec.bundle) && !(await this.components.bundles.fetch(spec.bundle, { peers: forwardedBy === undefined ? undefined : [forwardedBy], signal: AbortSignal.timeout(10_000) }).then(() => true, () => false))) {
        throw new Error(`bundle of cell ${cell} was not sent and is not in the mesh`)
      }
    }
    if (hosted === undefined) {
      // the bundles are in this node's store now: the member fetches them from here
      if (known !== undefined) return { app: request.app, ...(await this.forwarder.forward(request.app, membersOf(known), opened.signed, signal)) }
      const members = pickGroupMembers(this.components.nodes(), 3, [this.components.self])
      hosted = await this.groups.create(request.app, members)
      this.log.info(`app ${request.app}: formed raft group ${hosted.group} on ${members.join(', ')}`)
    }
    const result = await this.groups.propose(hosted, { id: newId(), kind: 'publish', owner: opened.owner, ownerKey: opened.ownerKey, at: request.at, manifest }, signal)
    if (!result.ok) throw new Error(result.error ?? 'refused')
    // a republish brings failed instances back, from their last good state
    await this.restartFailed(hosted).catch((err: Error) => { this.log.warn(`app ${request.app}: cannot restart its failed instances: ${err.message}`) })
    return { app: request.app, changed: result.changed }
  }

  /** An owner-signed scale or revert (forwarded to the app's group if this node is not a member). */
  async ownerCommand (signed: unknown, signal?: AbortSignal, forwardedBy?: string): Promise<{ changed: boolean }> {
    const opened = await openOwnerRequest(signed)
    const request = opened.request
    if (request.op === 'publish') throw new Error('publish requests go to /v1/publish')
    const known = this.table.get(request.app)
    const hosted = this.groups.ofApp(request.app)
    if (hosted === undefined) {
      if (forwardedBy !== undefined) throw new NotMemberError(`this node is not in the group of app ${request.app}`)
      if (known === undefined) throw new Error(`no app named ${request.app}`)
      return await this.forwarder.forward(request.app, membersOf(known), opened.signed, signal)
    }
    if (request.op === 'restart') {
      if (hosted.state === undefined || hosted.state.owner !== opened.owner) throw new Error(`app ${request.app} belongs to another owner`)
      if (request.cell !== undefined && hosted.state.manifest.cells[request.cell] === undefined) throw new Error(`app ${request.app} has no cell ${request.cell}`)
      let accepted: string[] = []
      if (request.acceptLoss === true) {
        checkAcceptLoss(request.at, Date.now(), undefined)
        // only the leader knows which instances are lost: a member hands the request to it
        if (!this.controller.leads(hosted)) {
          if (forwardedBy !== undefined || known === undefined) throw new NotMemberError(`this node does not lead app ${request.app}`)
          return await this.forwarder.forward(request.app, membersOf(known), opened.signed, signal)
        }
        checkAcceptLoss(request.at, Date.now(), this.acceptedLossAt.get(request.app))
        this.acceptedLossAt.set(request.app, request.at)
        accepted = this.controller.acceptLoss(hosted, request.cell)
        for (const address of accepted) this.log.warn(`app ${request.app}: its owner accepts the loss of what the missing holders of ${address} hold: it starts from the newest copy found`)
      }
      const restarted = await this.restartFailed(hosted, request.cell)
      return { changed: accepted.length + restarted.length > 0 }
    }
    const owner = { id: newId(), owner: opened.owner, ownerKey: opened.ownerKey, at: request.at }
    const cmd: AppCommand = request.op === 'scale'
      ? { ...owner, kind: 'scale', cell: request.cell, replicas: request.replicas }
      : { ...owner, kind: 'revert', cell: request.cell }
    const result = await this.groups.propose(hosted, cmd, signal)
    if (!result.ok) throw new Error(result.error ?? 'refused')
    return { changed: result.changed }
  }

  /**
   * Restarts the failed instances of the app (or of one cell) from their last good state,
   * on the nodes that run them (as their nodes advertise them); returns their addresses.
   */
  private async restartFailed (hosted: HostedApp, cell?: string): Promise<string[]> {
    const state = hosted.state
    const failed = this.components.failed
    if (state === undefined || failed === undefined) return []
    if (cell !== undefined && state.manifest.cells[cell] === undefined) throw new Error(`app ${state.app} has no cell ${cell}`)
    const restarted: string[] = []
    for (const [name, instances] of Object.entries(state.placement)) {
      if (cell !== undefined && name !== cell) continue
      const spec = state.manifest.cells[name]
      if (spec?.bundle === undefined) continue
      const limits = { memory: spec.memory, timeout: spec.timeout, mailbox: spec.mailbox }
      for (const [i, instance] of instances.entries()) {
        const address = instanceAddress(state.app, name, i)
        if (instance.primary === null || !failed(address, instance.primary)) continue
        if (instance.primary === this.components.self) await this.components.runtime.restart(address)
        else await this.components.messaging.transformRemote(instance.primary, { address, bundle: spec.bundle, owner: Buffer.from(state.ownerKey, 'base64'), limits, replace: true }, { deadline: Date.now() + 30_000 })
        this.log.info(`app ${state.app}: restarted ${address} on ${instance.primary} from its last good state`)
        restarted.push(address)
      }
    }
    return restarted
  }

  /** A member's side of a forwarded owner request: verified and carried out as if it came from this node's API. */
  private async handleForwarded (signed: SignedOwnerRequest, from: string, signal: AbortSignal): Promise<{ changed: boolean }> {
    const { request } = await openOwnerRequest(signed)
    if (request.op === 'publish') return await this.publish(signed, [], signal, from)
    return await this.ownerCommand(signed, signal, from)
  }
}

/** the members of an app's group, its announced leader first */
function membersOf (known: AppAnnouncement): string[] {
  return [...new Set([known.leader, ...known.members])].filter(m => known.members.includes(m))
}

export function createTopologyService (components: TopologyServiceComponents, init: TopologyServiceInit): TopologyService {
  return new TopologyService(components, init)
}
