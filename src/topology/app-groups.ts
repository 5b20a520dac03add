// The Raft groups of the apps this node is a member of: one group per app incarnation,
// each with its log on disk under <groupsDir>/<group>, the app state machine applied to
// its committed entries, and proposals that wait for their command to be applied.
//
// Group ids are `<app>~<random>`: one per incarnation of the app, so the last messages of
// a dissolved group cannot bring it back, nor block a new group for the same app name.
// Members other than the publisher create the group when its first raft message reaches
// them (RaftHost.onUnknownGroup) and receive the log from the leader.
//
// The log stays bounded: once the entries applied since the last snapshot pass a count or
// a size, the app state is saved as the group's snapshot (app-snapshot.ts) and the log
// before it dropped but a short tail; a restart reads the snapshot and replays the tail,
// and a member too far behind receives the snapshot. A group whose log on disk is damaged
// is moved aside (<dir>.damaged-<time>) with one error line, and the node rejoins it from
// its other members as an empty member (GroupInit.rejoin); the node's other groups start
// as usual.
import { randomBytes } from 'node:crypto'
import { readdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { DiskLogStorage, WalCorruptError } from '../raft/storage/disk-log-storage.js'
import { EntryType } from '../raft/types.js'
import type { Entry, Message, Snapshot } from '../raft/types.js'
import type { Logger } from '../util/logger.js'
import { mkdirDurable } from '../util/atomic-file.js'
import { applyCommand, decodeCommand, encodeCommand } from './app-state.js'
import type { AppCommand, AppState, ApplyResult } from './app-state.js'
import { decodeAppSnapshot, encodeAppSnapshot } from './app-snapshot.js'
import type { Role } from './reconcile.js'
import type { RaftPort } from './ports.js'
import type { ProposedMemberChange } from './group-members.js'

/** recovering: waiting for the nodes that may hold its newest copy; lost: not served, as no copy was found or the newest may be on a node still away (recovery.ts) */
export type InstanceState = 'starting' | 'transformed' | 'failed' | 'recovering' | 'lost'

/** one copy the leader started (its view of what runs) */
export interface RunningCopyState {
  address: string
  node: string
  role: Role
  revision: string
  state: InstanceState
  /** why a recovering or lost primary is not served (primary-recovery.ts), announced with it */
  reason?: string
  /** failed attempts in a row, and when the next may start (backoff) */
  failures?: number
  retryAt?: number
}

export const copyKey = (address: string, node: string): string => `${address} ${node}`

export interface HostedApp {
  group: string
  app: string
  storage: DiskLogStorage
  state?: AppState
  /** copies this node started as leader, by copyKey */
  running: Map<string, RunningCopyState>
  /** a controller round is under way */
  busy: boolean
  /** version of this node's announcements of the app (grows within a term) */
  version: bigint
  lastAnnounced: number
  revertAnnouncements: number
  dissolved: boolean
  /** the membership change the leader last proposed, and when */
  memberChange?: ProposedMemberChange
  /** the leader's last round found nothing to do: what it looked at (AppController.roundInputs) and when it ran */
  quiet?: { inputs: string, at: number }
  /** log index `state` is as of */
  applied: number
  /** entries and their bytes applied since the last snapshot */
  sinceSnapshot: { entries: number, bytes: number }
  /** a snapshot is being taken */
  compacting: boolean
}

export interface AppGroupsComponents {
  raft: RaftPort
  logger: Logger
}

export interface AppGroupsInit {
  /** one directory per hosted group */
  groupsDir: string
  /** ms a proposal may wait for its group (default 15 s) */
  proposalTimeout?: number
  /** snapshot the app state once this many entries were applied since the last snapshot (default 1000)… */
  snapshotEntries?: number
  /** …or this many bytes of entries (default 1 MiB) */
  snapshotBytes?: number
  /** entries kept before the snapshot point, for members slightly behind (default 100) */
  snapshotKeepEntries?: number
  /** size of a group's WAL segment files: compacted segments are deleted whole (default 256 KiB) */
  walSegmentBytes?: number
}

export const GROUP_ID = /^([a-z0-9][a-z0-9-]{0,62})~[0-9a-f]{8}$/i
/** a proposal not applied after this long is proposed again */
const PROPOSAL_RETRY_MS = 2000

/** a fresh id for a command or a group incarnation */
export function newId (bytes = 12): string {
  return randomBytes(bytes).toString('hex')
}

export class AppGroups {
  private readonly hosted = new Map<string, HostedApp>()
  private readonly opening = new Map<string, Promise<HostedApp>>()
  private readonly waiters = new Map<string, (result: ApplyResult) => void>()
  /** groups this node left: their members' last messages must not bring them back */
  private readonly dissolved = new Set<string>()
  private running = false

  constructor (private readonly components: AppGroupsComponents, private readonly init: AppGroupsInit) {}

  /** Opens every group whose log is on disk; a damaged one is moved aside and rejoined from its members. */
  async start (): Promise<void> {
    await mkdirDurable(this.init.groupsDir)
    for (const name of await readdir(this.init.groupsDir)) {
      if (!GROUP_ID.test(name)) continue
      try {
        await this.open(name)
      } catch (err) {
        if (!(err instanceof WalCorruptError)) throw err
        await this.rejoinDamaged(name, err)
      }
    }
    // only now: a raft message for a group on disk must not open it (or its damaged log) first
    this.running = true
  }

  /** Moves a damaged group's directory aside and rejoins the group as an empty member. */
  private async rejoinDamaged (group: string, err: Error): Promise<void> {
    const dir = join(this.init.groupsDir, group)
    const members = await DiskLogStorage.salvageMembers(dir)
    const aside = `${dir}.damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`
    await rename(dir, aside)
    this.components.logger.error(`raft group ${group} is damaged and was moved aside to ${aside}: ${err.message.replace(/\s+/g, ' ')}; rejoining it from its members (${members.length === 0 ? 'none known: waiting for the leader' : members.join(', ')})`)
    await this.open(group, undefined, members)
  }

  async stop (): Promise<void> {
    this.running = false
    for (const [group, h] of this.hosted) {
      await this.components.raft.removeGroup(group)
      await h.storage.close().catch(() => {})
    }
    this.hosted.clear()
  }

  /** For RaftHost.onUnknownGroup: a raft message for a group this node does not host yet. */
  joinOnFirstMessage (group: string, from: string, message: Message): void {
    if (!this.running || !GROUP_ID.test(group) || this.hosted.has(group) || this.opening.has(group) || this.dissolved.has(group)) return
    this.components.logger.info(`joining raft group ${group} (first message from ${from}, type ${message.type})`)
    this.open(group).catch(err => { this.components.logger.warn(`cannot host the group of app ${group}: ${(err as Error).message}`) })
  }

  /** every hosted group, dissolved ones included until their log is removed */
  all (): HostedApp[] {
    return [...this.hosted.values()]
  }

  /** the live group of `app` hosted here */
  ofApp (app: string): HostedApp | undefined {
    return this.all().find(h => h.app === app && !h.dissolved)
  }

  /** Creates a new incarnation of `app` with these members (this node among them). */
  async create (app: string, members: string[]): Promise<HostedApp> {
    return await this.open(`${app}~${newId(4)}`, members)
  }

  private async open (group: string, bootstrap?: string[], rejoin?: string[]): Promise<HostedApp> {
    const existing = this.hosted.get(group) ?? this.opening.get(group)
    if (existing !== undefined) return await existing
    const app = (GROUP_ID.exec(group) as RegExpExecArray)[1]
    const opening = (async () => {
      const storage = await DiskLogStorage.open(join(this.init.groupsDir, group), { segmentBytes: this.init.walSegmentBytes ?? 256 * 1024 })
      const h: HostedApp = { group, app, storage, running: new Map(), busy: false, version: BigInt(Date.now()), lastAnnounced: 0, revertAnnouncements: 0, dissolved: false, applied: 0, sinceSnapshot: { entries: 0, bytes: 0 }, compacting: false }
      const snap = storage.snapshot()
      if (snap.metadata.index > 0) {
        try {
          h.state = decodeAppSnapshot(snap.data, app)
        } catch (err) {
          await storage.close()
          throw new WalCorruptError((err as Error).message)
        }
        h.applied = snap.metadata.index
      }
      this.components.raft.addGroup(group, {
        storage,
        bootstrap,
        rejoin,
        apply: entries => { this.apply(h, entries) },
        applySnapshot: snapshot => { this.restore(h, snapshot) }
      })
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
        this.components.logger.warn(`app ${h.app}: skipping log entry ${entry.index}: ${(err as Error).message}`)
        continue
      }
      const { state, result } = applyCommand(h.state, cmd)
      h.state = state
      if (!result.ok && cmd.kind !== 'place') this.components.logger.info(`app ${h.app}: refused ${cmd.kind}: ${result.error ?? ''}`)
      this.waiters.get(cmd.id)?.(result)
      this.waiters.delete(cmd.id)
      if (result.changed) h.lastAnnounced = 0
      if (cmd.kind === 'dissolve' && result.ok && state === undefined) this.dissolve(h)
    }
    if (entries.length === 0) return
    h.applied = entries[entries.length - 1].index
    h.sinceSnapshot.entries += entries.length
    for (const e of entries) h.sinceSnapshot.bytes += e.data.byteLength
    if (h.sinceSnapshot.entries >= (this.init.snapshotEntries ?? 1000) || h.sinceSnapshot.bytes >= (this.init.snapshotBytes ?? 1024 * 1024)) this.scheduleSnapshot(h)
  }

  /** The leader sent a snapshot (this member was too far behind): the app state is the snapshot's. */
  private restore (h: HostedApp, snap: Snapshot): void {
    // a bad snapshot throws: the raft host then fails this group alone
    h.state = decodeAppSnapshot(snap.data, h.app)
    h.applied = snap.metadata.index
    h.sinceSnapshot = { entries: 0, bytes: 0 }
    h.lastAnnounced = 0
    this.components.logger.info(`app ${h.app}: restored its state from the group's snapshot at index ${snap.metadata.index}`)
  }

  /**
   * Takes a snapshot once the host has recorded everything applied so far (apply runs inside
   * its Ready round, before it updates its applied index): the data must be the state as of
   * status().applied, so it is captured and handed over in one synchronous step.
   */
  private scheduleSnapshot (h: HostedApp): void {
    if (h.compacting || h.dissolved) return
    h.compacting = true
    const attempt = (): void => {
      if (!this.running || h.dissolved || !this.components.raft.hasGroup(h.group)) { h.compacting = false; return }
      if (this.components.raft.status(h.group).applied !== h.applied) { setImmediate(attempt); return }
      const data = encodeAppSnapshot(h.state)
      h.sinceSnapshot = { entries: 0, bytes: 0 }
      this.components.raft.snapshotAndCompact(h.group, data, this.init.snapshotKeepEntries ?? 100)
        .catch((err: Error) => { this.components.logger.warn(`app ${h.app}: cannot snapshot its raft log: ${err.message}`) })
        .finally(() => { h.compacting = false })
    }
    setImmediate(attempt)
  }

  private dissolve (h: HostedApp): void {
    if (h.dissolved) return
    h.dissolved = true
    this.dissolved.add(h.group)
    this.components.logger.info(`app ${h.app} reverted: leaving raft group ${h.group}`)
    setImmediate(() => {
      void (async () => {
        await this.components.raft.removeGroup(h.group)
        await h.storage.close().catch(() => {})
        await rm(join(this.init.groupsDir, h.group), { recursive: true, force: true })
        this.hosted.delete(h.group)
      })().catch(err => { this.components.logger.warn(`app ${h.app}: cannot remove its raft log: ${(err as Error).message}`) })
    })
  }

  /** Proposes a command to the group and resolves with its result once applied here. */
  async propose (h: HostedApp, cmd: AppCommand, signal?: AbortSignal): Promise<ApplyResult> {
    const { group, app } = h
    const { promise, resolve, reject } = Promise.withResolvers<ApplyResult>()
    let retry: NodeJS.Timeout | undefined
    const finish = (): void => {
      clearTimeout(retry)
      clearTimeout(timeout)
      this.waiters.delete(cmd.id)
      signal?.removeEventListener('abort', onAbort)
    }
    const onAbort = (): void => { finish(); reject(new Error(`${cmd.kind} of app ${app} aborted`)) }
    const timeout = setTimeout(() => { finish(); reject(new Error(`app ${app}: no answer from its raft group in time (no leader elected? are its members up?)`)) }, this.init.proposalTimeout ?? 15_000)
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
}
