// The app state machine: what an app's Raft group agrees on. A pure reducer over the
// commands of the group's log — every member applies the same commands in the same order
// and reaches the same state. Owner checks happen here too (a command from another key is
// refused, so a different owner can never take an app over), and owner requests carry the
// owner's clock (`at`): one not newer than the last accepted is a replay and is refused.
// Signatures are verified before a command is proposed (see owner-request.ts).
//
// Rollback of a failed rollout: a publish that changes a cell's revision keeps the cell's
// previous revision; when the leader sees the new code fail on an instance (the instance
// keeps serving the old code with its state), it proposes `rollback`, which restores the
// previous revision of that cell and records why, for `stem publish` to report.
import { createHash } from 'node:crypto'
import type { AppManifest } from './manifest.js'
import { cellRevision, revisionFields } from './cell-revision.js'
import type { RevisionFields } from './cell-revision.js'
import type { Placement } from './placement-accounting.js'
import type { ReservationItem } from './reservations.js'
import { manifestHash } from './manifest-canonical.js'
import { instanceAddress } from './types.js'
import type { Holder } from './recovery.js'

/** epochs of holders kept per instance (older copies are superseded by newer epochs' ones) */
const HOLDER_EPOCHS = 4

export interface AppState {
  app: string
  /** peer id of the owner key */
  owner: string
  /** the owner's protobuf-encoded public key, base64 */
  ownerKey: string
  /** the manifest as published (bundle hashes set), with replicas changed by `scale` */
  manifest: AppManifest
  /** hash of the manifest as last published: the same again changes nothing */
  publishedHash: string
  /** owner clock of the last accepted owner request */
  lastRequestAt: number
  /** cells reverted by `stem revert app/cell` (placed again by the next publish) */
  reverted: string[]
  /** the whole app was reverted: its cells are being reverted and the group dissolves */
  dissolving: boolean
  placement: Placement
  /** placement epoch per instance address: grows each time its primary changes */
  epochs: Record<string, number>
  /**
   * per instance address, the nodes placed as its primary or clones in its last few epochs:
   * the nodes that may hold a copy of its state, which recovery asks before starting it
   */
  holders?: Record<string, Holder[]>
  /** cell → its revision before the last publish changed it (while that rollout may still fail) */
  previous: Record<string, RevisionFields & { at: number }>
  /** cell → the last rollout of it that failed and was rolled back */
  rolledBack: Record<string, RolledBack>
  /**
   * the app's reservation items (reservations.ts), committed with the placement they hold
   * room for: a new leader announces them with the same ids and `since`, keeping their
   * place in every node's queue
   */
  reservations: ReservationItem[]
}

export interface RolledBack {
  /** the revision that failed */
  revision: string
  /** why, as the failing node said it */
  error: string
  /** owner clock of the publish that brought the failed revision */
  at: number
}

interface OwnerFields { id: string, owner: string, ownerKey: string, at: number }

export type AppCommand =
  | OwnerFields & { kind: 'publish', manifest: AppManifest }
  | OwnerFields & { kind: 'scale', cell: string, replicas: number }
  | OwnerFields & { kind: 'revert', cell?: string }
  /**
   * the leader's placement decision, computed from the placement with fingerprint `base`
   * (placementBase): refused if the placement changed since — a deposed leader's proposal,
   * forwarded or retried, cannot bring back a placement made from a stale view (a primary
   * on a node without the instance's state); `reservations`: the items that hold room for
   * it (absent: unchanged)
   */
  | { id: string, kind: 'place', placement: Placement, base?: string, reservations?: ReservationItem[] }
  /** the leader saw the whole-app revert through: members drop the group */
  | { id: string, kind: 'dissolve' }
  /** the leader saw revision `revision` of `cell` fail on an instance: back to the previous one */
  | { id: string, kind: 'rollback', cell: string, revision: string, error: string }
  /**
   * the leader's autoscale of a consumer (streams/autoscale.ts): `cell` goes from `from`
   * replicas to `replicas`, within its manifest's `autoscale` bounds; refused if its
   * replicas are no longer `from` (a `stem scale` or another leader's step came first)
   */
  | { id: string, kind: 'autoscale', cell: string, from: number, replicas: number }

export interface ApplyResult {
  ok: boolean
  /** whether the state changed */
  changed: boolean
  error?: string
}

export interface Applied {
  state: AppState | undefined
  result: ApplyResult
}

const refuse = (state: AppState | undefined, error: string): Applied => ({ state, result: { ok: false, changed: false, error } })
const done = (state: AppState | undefined, changed: boolean): Applied => ({ state, result: { ok: true, changed } })

/** The cells that should run now: the manifest's, minus reverted ones, none while dissolving. */
export function activeCells (state: AppState): string[] {
  if (state.dissolving) return []
  return Object.keys(state.manifest.cells).filter(c => !state.reverted.includes(c)).sort()
}

/** The fingerprint of the placement of the active cells, the `base` of a place command. */
export function placementBase (state: AppState): string {
  const current: Placement = {}
  for (const cell of activeCells(state)) current[cell] = state.placement[cell] ?? []
  return createHash('sha256').update(JSON.stringify(current)).digest('hex')
}

/** Drops placement entries of cells no longer active and instances beyond `replicas`. */
function trimPlacement (state: AppState): Placement {
  const out: Placement = {}
  for (const cell of activeCells(state)) {
    const placed = state.placement[cell]
    if (placed !== undefined) out[cell] = placed.slice(0, state.manifest.cells[cell].replicas)
  }
  return out
}

/**
 * `state.holders` of the instances the manifest still has: a scaled-down replica's or a
 * removed cell's copies are reverted on their nodes, so an instance added again starts new
 * instead of waiting for holders of a state that was let go (one that left the mesh for
 * good would keep it `lost`: sim:mesh seed 487 of the partition profile with joins and
 * leaves).
 */
function trimHolders (state: AppState): AppState['holders'] {
  if (state.holders === undefined) return undefined
  const kept = Object.entries(state.holders).filter(([address]) => {
    const at = address.lastIndexOf('#')
    const cell = address.slice(state.app.length + 1, at)
    return activeCells(state).includes(cell) && Number(address.slice(at + 1)) < state.manifest.cells[cell].replicas
  })
  return Object.fromEntries(kept)
}

function ownerProblem (state: AppState, cmd: OwnerFields): string | undefined {
  if (cmd.owner !== state.owner) return `app ${state.app} belongs to owner ${state.owner}, not ${cmd.owner}`
  if (cmd.at <= state.lastRequestAt) return `stale request for app ${state.app} (replayed, or the owner's clock went back)`
  return undefined
}

export function applyCommand (state: AppState | undefined, cmd: AppCommand): Applied {
  switch (cmd.kind) {
    case 'publish': {
      const hash = manifestHash(cmd.manifest)
      if (state === undefined) {
        return done({
          app: cmd.manifest.app,
          owner: cmd.owner,
          ownerKey: cmd.ownerKey,
          manifest: cmd.manifest,
          publishedHash: hash,
          lastRequestAt: cmd.at,
          reverted: [],
          dissolving: false,
          placement: {},
          epochs: {},
          previous: {},
          rolledBack: {},
          reservations: []
        }, true)
      }
      if (cmd.manifest.app !== state.app) return refuse(state, `manifest is for app ${cmd.manifest.app}, not ${state.app}`)
      const problem = ownerProblem(state, cmd)
      if (problem !== undefined) return refuse(state, problem)
      const reshard = reshardProblem(state, cmd.manifest)
      if (reshard !== undefined) return refuse(state, reshard)
      if (hash === state.publishedHash && state.reverted.length === 0 && !state.dissolving) {
        return done({ ...state, lastRequestAt: cmd.at }, false)
      }
      // the cells whose revision this publish changes can roll back to the one running now
      const previous: AppState['previous'] = {}
      for (const [cell, spec] of Object.entries(cmd.manifest.cells)) {
        const before = state.manifest.cells[cell]
        if (before !== undefined && cellRevision(before) !== cellRevision(spec)) previous[cell] = { ...revisionFields(before), at: cmd.at }
      }
      const next: AppState = { ...state, manifest: cmd.manifest, publishedHash: hash, lastRequestAt: cmd.at, reverted: [], dissolving: false, previous, rolledBack: {} }
      return done({ ...next, placement: trimPlacement(next), holders: trimHolders(next) }, true)
    }
    case 'scale': {
      if (state === undefined) return refuse(state, 'no such app')
      const problem = ownerProblem(state, cmd)
      if (problem !== undefined) return refuse(state, problem)
      const spec = state.manifest.cells[cmd.cell]
      if (spec === undefined) return refuse(state, `app ${state.app} has no cell ${cmd.cell}`)
      if (!Number.isSafeInteger(cmd.replicas) || cmd.replicas < 1 || cmd.replicas > 1000) return refuse(state, `replicas must be a whole number from 1 to 1000, got ${cmd.replicas}`)
      // a keyed cell's keys hash to its shards: another count would move keys away from their state
      if (spec.keyed === true && cmd.replicas !== spec.replicas) return refuse(state, `cell ${cmd.cell} is keyed: its ${spec.replicas} shards are fixed (its keys hash to them)`)
      const changed = spec.replicas !== cmd.replicas
      const manifest = { ...state.manifest, cells: { ...state.manifest.cells, [cmd.cell]: { ...spec, replicas: cmd.replicas } } }
      const next: AppState = { ...state, manifest, lastRequestAt: cmd.at }
      return done({ ...next, placement: trimPlacement(next), holders: trimHolders(next) }, changed)
    }
    case 'autoscale': {
      if (state === undefined) return refuse(state, 'no such app')
      const spec = state.manifest.cells[cmd.cell]
      if (spec?.autoscale === undefined) return refuse(state, `cell ${cmd.cell} of app ${state.app} does not autoscale`)
      if (spec.replicas !== cmd.from) return refuse(state, `stale autoscale of cell ${cmd.cell}: it has ${spec.replicas} replicas, not ${cmd.from}`)
      if (!Number.isSafeInteger(cmd.replicas) || cmd.replicas < spec.autoscale.min || cmd.replicas > spec.autoscale.max) return refuse(state, `autoscale of cell ${cmd.cell} to ${cmd.replicas} replicas: outside ${spec.autoscale.min}..${spec.autoscale.max}`)
      const manifest = { ...state.manifest, cells: { ...state.manifest.cells, [cmd.cell]: { ...spec, replicas: cmd.replicas } } }
      // the instances scaled away are meant to go with their state: grown again, they start
      // blank (no recovery wait for their old holders, no old cursors coming back)
      const gone = (address: string): boolean => address.startsWith(`${state.app}/${cmd.cell}#`) && Number(address.slice(address.lastIndexOf('#') + 1)) >= cmd.replicas
      const holders = Object.fromEntries(Object.entries(state.holders ?? {}).filter(([address]) => !gone(address)))
      const next: AppState = { ...state, manifest, holders }
      return done({ ...next, placement: trimPlacement(next) }, cmd.replicas !== spec.replicas)
    }
    case 'revert': {
      if (state === undefined) return refuse(state, 'no such app')
      const problem = ownerProblem(state, cmd)
      if (problem !== undefined) return refuse(state, problem)
      if (cmd.cell === undefined) {
        const next: AppState = { ...state, lastRequestAt: cmd.at, dissolving: true }
        return done({ ...next, placement: {}, reservations: [] }, !state.dissolving)
      }
      if (state.manifest.cells[cmd.cell] === undefined) return refuse(state, `app ${state.app} has no cell ${cmd.cell}`)
      const changed = !state.reverted.includes(cmd.cell)
      // the reverted cell's copies are meant to go: published again, its instances start new
      const next: AppState = { ...state, lastRequestAt: cmd.at, reverted: changed ? [...state.reverted, cmd.cell].sort() : state.reverted }
      return done({ ...next, placement: trimPlacement(next), holders: trimHolders(next) }, changed)
    }
    case 'place': {
      if (state === undefined) return refuse(state, 'no such app')
      if (cmd.base !== undefined && cmd.base !== placementBase(state)) return refuse(state, 'stale placement: made from a placement that has changed since')
      const placement: Placement = {}
      const epochs = { ...state.epochs }
      const holders = { ...state.holders }
      let changed = false
      for (const cell of activeCells(state)) {
        const wanted = cmd.placement[cell]
        if (wanted === undefined) continue
        placement[cell] = wanted.slice(0, state.manifest.cells[cell].replicas).map((inst, i) => {
          const before = state.placement[cell]?.[i]
          const address = instanceAddress(state.app, cell, i)
          if (before?.primary !== inst.primary) { epochs[address] = (epochs[address] ?? 0) + 1; changed = true }
          if (JSON.stringify(before?.clones ?? []) !== JSON.stringify(inst.clones)) changed = true
          holders[address] = withHolders(holders[address] ?? [], epochs[address] ?? 0, inst.primary, inst.clones)
          return { primary: inst.primary, clones: [...inst.clones] }
        })
      }
      const reservations = cmd.reservations ?? state.reservations
      if (JSON.stringify(reservations) !== JSON.stringify(state.reservations)) changed = true
      return done({ ...state, placement, epochs, holders, reservations: reservations.map(r => ({ ...r })) }, changed)
    }
    case 'rollback': {
      if (state === undefined) return refuse(state, 'no such app')
      const spec = state.manifest.cells[cmd.cell]
      // already rolled back, or published again since: nothing to undo
      if (spec === undefined || cellRevision(spec) !== cmd.revision || state.dissolving) return done(state, false)
      const before = state.previous[cmd.cell]
      if (before === undefined) return refuse(state, `cell ${cmd.cell} of app ${state.app} has no previous revision to roll back to`)
      const { at, ...fields } = before
      const manifest = { ...state.manifest, cells: { ...state.manifest.cells, [cmd.cell]: { ...spec, ...fields } } }
      const previous = { ...state.previous }
      delete previous[cmd.cell]
      return done({
        ...state,
        manifest,
        // the manifest that runs now is not the one published: publishing that one again retries it
        publishedHash: manifestHash(manifest),
        previous,
        rolledBack: { ...state.rolledBack, [cmd.cell]: { revision: cmd.revision, error: cmd.error, at } }
      }, true)
    }
    case 'dissolve':
      if (state === undefined) return done(state, false)
      if (!state.dissolving) return refuse(state, `app ${state.app} is not being reverted`)
      return done(undefined, true)
  }
}

/**
 * `holders` with this epoch's primary and clones added, keeping the last HOLDER_EPOCHS
 * epochs: clones placed side by side are `paired` from then on, this epoch's clones that
 * this placement no longer lists are `dropped`, one listed again `readded` from then on,
 * and a primary this placement gives no clone `alone` (recovery.ts uncovered).
 */
function withHolders (holders: Holder[], epoch: number, primary: string | null, clones: string[]): Holder[] {
  const next = holders.map(h => {
    if (h.epoch !== epoch || h.role !== 'clone') return h
    const { dropped, ...rest } = h
    if (!clones.includes(h.node)) return { ...rest, dropped: true }
    return { ...rest, ...(clones.length > 1 ? { paired: true } : {}), ...(dropped === true ? { readded: true } : {}) }
  })
  const addClone = (node: string, paired: boolean): void => {
    if (!next.some(h => h.node === node && h.epoch === epoch && h.role === 'clone')) next.push(paired ? { node, epoch, role: 'clone', paired } : { node, epoch, role: 'clone' })
  }
  if (primary !== null) {
    // a primary left without a clone answers on its own: what it acknowledged then is on it
    // alone. Recorded from its first placement on (a holder from before has no flag)
    const i = next.findIndex(h => h.node === primary && h.epoch === epoch && h.role === 'primary')
    if (i < 0) next.push({ node: primary, epoch, role: 'primary', alone: clones.length === 0 })
    else if (clones.length === 0) next[i] = { ...next[i], alone: true }
  }
  for (const c of clones) addClone(c, clones.length > 1)
  const kept = [...new Set(next.map(h => h.epoch))].sort((a, b) => b - a).slice(0, HOLDER_EPOCHS)
  return next.filter(h => kept.includes(h.epoch))
}

/** Log entry bytes of a command. */
export function encodeCommand (cmd: AppCommand): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(cmd))
}

/** A publish may not change the shards of a keyed cell that holds state (its keys hash to them), nor make it unkeyed. */
function reshardProblem (state: AppState, manifest: AppManifest): string | undefined {
  for (const [name, spec] of Object.entries(manifest.cells)) {
    const before = state.manifest.cells[name]
    if (before?.keyed !== true || state.reverted.includes(name)) continue
    if (spec.keyed !== true || spec.replicas !== before.replicas) return `cell ${name} is keyed with ${before.replicas} shards: a publish cannot change its shards or make it unkeyed (revert the cell first)`
  }
  return undefined
}

const KINDS = new Set(['publish', 'scale', 'revert', 'place', 'dissolve', 'rollback', 'autoscale'])

/** Decodes a log entry; throws a one-line error for bytes that are not a command. */
export function decodeCommand (bytes: Uint8Array): AppCommand {
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch {
    throw new Error('invalid app command: not JSON text')
  }
  const cmd = value as Partial<AppCommand> | null
  if (cmd === null || typeof cmd !== 'object' || Array.isArray(cmd)) throw new Error('invalid app command: not an object')
  if (typeof cmd.kind !== 'string' || !KINDS.has(cmd.kind)) throw new Error(`invalid app command: unknown kind ${JSON.stringify(cmd.kind)}`)
  if (typeof cmd.id !== 'string') throw new Error('invalid app command: no id')
  if (cmd.kind === 'publish' || cmd.kind === 'scale' || cmd.kind === 'revert') {
    const o = cmd as Partial<OwnerFields>
    if (typeof o.owner !== 'string' || typeof o.ownerKey !== 'string' || typeof o.at !== 'number') throw new Error(`invalid app command: ${cmd.kind} without owner, ownerKey and at`)
  }
  if (cmd.kind === 'publish' && (typeof cmd.manifest !== 'object' || cmd.manifest === null || typeof cmd.manifest.cells !== 'object')) throw new Error('invalid app command: publish without a manifest')
  if (cmd.kind === 'rollback' && (typeof cmd.cell !== 'string' || typeof cmd.revision !== 'string' || typeof cmd.error !== 'string')) throw new Error('invalid app command: rollback without cell, revision and error')
  if (cmd.kind === 'autoscale' && (typeof cmd.cell !== 'string' || !Number.isSafeInteger(cmd.from) || !Number.isSafeInteger(cmd.replicas))) throw new Error('invalid app command: autoscale without cell, from and replicas')
  if (cmd.kind === 'place' && (typeof cmd.placement !== 'object' || cmd.placement === null)) throw new Error('invalid app command: place without a placement')
  if (cmd.kind === 'place' && cmd.reservations !== undefined && !(Array.isArray(cmd.reservations) && cmd.reservations.every(isReservationItem))) throw new Error('invalid app command: place with malformed reservations')
  if (cmd.kind === 'place' && cmd.base !== undefined && typeof cmd.base !== 'string') throw new Error('invalid app command: place with a base that is not a string')
  return cmd as AppCommand
}

export function isReservationItem (v: unknown): v is ReservationItem {
  const i = v as Partial<ReservationItem> | null
  return i !== null && typeof i === 'object' && typeof i.id === 'string' && typeof i.node === 'string' &&
    Number.isSafeInteger(i.memory) && Number.isSafeInteger(i.cells) && Number.isSafeInteger(i.since)
}
