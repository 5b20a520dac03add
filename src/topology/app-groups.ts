// The Raft groups of the apps this node is a member of: one group per app incarnation,
// each with its log on disk under <groupsDir>/<group>, the app state machine applied to
// its committed entries, and proposals that wait for their command to be applied.
//
// Group ids are `<app>~<random>`: one per incarnation of the app, so the last messages of
// a dissolved group cannot bring it back, nor block a new group for the same app name.
// Members other than the publisher create the group when its first raft message reaches
// them (RaftHost.onUnknownGroup) and receive the log from the leader.
import { randomBytes } from 'node:crypto'
import { mkdir, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { DiskLogStorage } from '../raft/storage/disk-log-storage.js'
import { EntryType } from '../raft/types.js'
import type { Entry, Message } from '../raft/types.js'
import type { Logger } from '../util/logger.js'
import { applyCommand, decodeCommand, encodeCommand } from './app-state.js'
import type { AppCommand, AppState, ApplyResult } from './app-state.js'
import type { Role } from './reconcile.js'
import type { RaftPort } from './ports.js'

/** recovering: waiting for the nodes that may hold its newest copy; lost: every copy is gone (recovery.ts) */
export type InstanceState = 'starting' | 'transformed' | 'failed' | 'recovering' | 'lost'

/** one copy the leader started (its view of what runs) */
export interface RunningCopyState {
  address: string
  node: string
  role: Role
  revision: string
  state: InstanceState
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
  /** when the leader last proposed a membership change */
  lastConfChange: number
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

  /** Opens every group whose log is on disk. */
  async start (): Promise<void> {
    this.running = true
    await mkdir(this.init.groupsDir, { recursive: true })
    for (const name of await readdir(this.init.groupsDir)) {
      if (GROUP_ID.test(name)) await this.open(name)
    }
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

  private async open (group: string, bootstrap?: string[]): Promise<HostedApp> {
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
