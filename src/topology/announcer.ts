// Announcements on `stem/<mesh>/leaders`: each app's leader publishes the app's public
// state (owner, leader, term, members, where each instance and clone runs, routes) as a
// signed frame, on every change and every `announceInterval` ms. Every node keeps the
// newest announcement of each app in its AppTable and reverts the local cells an
// announcement no longer places on it (fencing.ts). The same topic carries the leaders'
// reservation announcements (reservation-sync.ts), handed to `reservations` once verified.
import type { Message as PubSubMessage } from '@libp2p/gossipsub'
import type { GossipSub } from '@libp2p/gossipsub'
import { createFrameVerifier } from '../wire/frame.js'
import type { FrameSigner } from '../wire/frame.js'
import type { Logger } from '../util/logger.js'
import { activeCells } from './app-state.js'
import { cellRevision } from './cell-revision.js'
import type { AppState } from './app-state.js'
import type { AppTable } from './app-table.js'
import type { HostedApp } from './app-groups.js'
import { copyKey } from './app-groups.js'
import { decodeLeadersMessage, encodeAppAnnouncement, encodeReservationMessage, MAX_ANNOUNCEMENT_BYTES, MAX_REASON_CHARS } from './announcement.js'
import type { AppAnnouncement, LeadersPayload } from './announcement.js'
import type { ReservationAnnouncement } from './reservations.js'
import { unwantedInstances } from './fencing.js'
import { instanceAddress } from './types.js'
import type { CellRuntimePort, RaftPort } from './ports.js'

export interface AppAnnouncerComponents {
  self: string
  raft: RaftPort
  runtime: CellRuntimePort
  table: AppTable
  pubsub: GossipSub
  signer: FrameSigner
  logger: Logger
  /** an announcement changed the table */
  learned: (a: AppAnnouncement) => void
  /** a reservation announcement in a frame signed by `sender` (not yet checked against the app's leader) */
  reservations: (a: ReservationAnnouncement, sender: string) => void
  /**
   * reverts a local primary that now runs on another node, keeping its state here as a
   * copy for a recovery (clones.ts demote; default: a plain revert). The new primary's
   * clones may not hold its state yet (sim:mesh seed 6415).
   */
  revertMoved?: (address: string, why: string) => Promise<void>
}

export interface AppAnnouncerInit {
  mesh: string
  /** ms between repeated announcements of an unchanged app (default 2000) */
  announceInterval?: number
}

export class AppAnnouncer {
  readonly topic: string
  private readonly verifier = createFrameVerifier({ maxBytes: MAX_ANNOUNCEMENT_BYTES + 1024, name: 'leaders' })
  private readonly onMessage = (evt: CustomEvent<PubSubMessage>): void => {
    if (evt.detail.topic === this.topic) this.receive(evt.detail.data)
  }

  constructor (private readonly components: AppAnnouncerComponents, private readonly init: AppAnnouncerInit) {
    this.topic = `stem/${init.mesh}/leaders`
  }

  start (): void {
    this.components.pubsub.subscribe(this.topic)
    this.components.pubsub.addEventListener('message', this.onMessage)
  }

  stop (): void {
    this.components.pubsub.removeEventListener('message', this.onMessage)
    try { this.components.pubsub.unsubscribe(this.topic) } catch {}
  }

  /** announcements refused by the verifier, by reason (metrics) */
  rejections (): Record<string, number> {
    return this.verifier.counts()
  }

  /** whether the unchanged app is due to be announced again */
  due (h: HostedApp): boolean {
    return Date.now() - h.lastAnnounced >= (this.init.announceInterval ?? 2000)
  }

  /** Announces the app as this node, its leader, sees it now. */
  announce (h: HostedApp, state: AppState): void {
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
          clonesReady: (placed?.clones ?? []).filter(c => h.running.get(copyKey(address, c))?.state === 'transformed'),
          revision: r?.role === 'primary' ? r.revision : undefined,
          reason: r?.role === 'primary' && (r.state === 'recovering' || r.state === 'lost') ? r.reason?.slice(0, MAX_REASON_CHARS) : undefined
        }
      })),
      cells: cells.map(name => ({ name, replicas: state.manifest.cells[name].replicas, timeout: state.manifest.cells[name].timeout, durability: state.manifest.cells[name].durability ?? 'disk', revision: cellRevision(state.manifest.cells[name]), rollback: state.rolledBack[name] === undefined ? undefined : { ...state.rolledBack[name], at: BigInt(state.rolledBack[name].at) }, autoscale: state.manifest.cells[name].autoscale })),
      routes: state.manifest.routes.filter(r => cells.includes(r.cell)).map(r => ({ method: r.method, path: r.path, cell: r.cell, handler: r.handler, ...(r.key !== undefined ? { key: r.key } : {}) })),
      reverted: state.dissolving
    }
    this.learn(announcement)
    const frame = this.components.signer.sign('leaders', encodeAppAnnouncement(announcement))
    this.components.pubsub.publish(this.topic, frame).catch(err => { this.components.logger.debug(`announcing app ${h.app} failed: ${(err as Error).message}`) })
  }

  /** Publishes this node's reservation announcement (as an app's leader). */
  announceReservations (a: ReservationAnnouncement): void {
    const frame = this.components.signer.sign('leaders', encodeReservationMessage(a))
    this.components.pubsub.publish(this.topic, frame).catch(err => { this.components.logger.debug(`announcing reservations of app ${a.app} failed: ${(err as Error).message}`) })
  }

  private receive (data: Uint8Array): void {
    const verified = this.verifier.verify(data, { forwarded: true, expect: 'leaders' })
    if (!verified.ok) return
    let message: LeadersPayload
    try {
      message = decodeLeadersMessage(verified.payload)
    } catch (err) {
      this.components.logger.debug(`dropped a leaders message from ${verified.sender}: ${(err as Error).message}`)
      return
    }
    if (message.kind === 'reservations') {
      this.components.reservations(message.reservations, verified.sender)
      return
    }
    if (message.app.leader !== verified.sender) return
    this.learn(message.app)
  }

  /** Applies an announcement (ours or a leader's) to the table and to this node's cells. */
  private learn (a: AppAnnouncement): void {
    if (!this.components.table.update(a)) return
    this.components.learned(a)
    const local = this.components.runtime.cells().filter(c => c.status === 'transformed').map(c => c.address)
    for (const address of unwantedInstances(a, local, this.components.self)) {
      // moved: the instance runs on another node now (not reverted, nor scaled away)
      const moved = a.reverted ? undefined : a.instances.find(i => i.address === address && i.node !== this.components.self)
      const why = moved === undefined ? `app ${a.app} no longer places it here` : `app ${a.app} now runs it on ${moved.node}`
      this.components.logger.info(`reverting ${address}: ${why}`)
      const revert = moved !== undefined && this.components.revertMoved !== undefined ? this.components.revertMoved(address, why) : this.components.runtime.revert(address)
      revert.catch(err => { this.components.logger.debug(`revert of ${address}: ${(err as Error).message}`) })
    }
  }
}
