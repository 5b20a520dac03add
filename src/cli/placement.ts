// Following a published app until it is placed: every instance of every cell running
// (transformed) and every clone the leader placed holding its copy. One helper for
// `stem publish` and `stem demo` (which runs `stem publish`), so both show the same lines.
import { setTimeout as delay } from 'node:timers/promises'
import type { ApiClient } from '../api/client.js'
import type { AppCellsListing, CellListing } from '../topology/app-table.js'
import type { AppManifest } from '../topology/manifest.js'
import { cellRevision } from '../topology/cell-revision.js'
import { CliError } from './context.js'
import type { Progress } from './progress.js'

/** what the manifest asks for, per cell, and the owner clock of the publish that asked */
export interface PlacementGoal {
  app: string
  /** `revision`: what each instance must run (cellRevision); an instance on another one is not placed yet */
  cells: Record<string, { replicas: number, clones: number, revision?: string }>
  at?: number
}

/** The goal of a manifest with its bundle hashes set (as published at owner clock `at`). */
export function placementGoal (manifest: AppManifest, at?: number): PlacementGoal {
  return { app: manifest.app, at, cells: Object.fromEntries(Object.entries(manifest.cells).map(([name, c]) => [name, { replicas: c.replicas, clones: c.clones, revision: c.bundle === undefined ? undefined : cellRevision(c) }])) }
}

/** The goal of `stem scale APP/CELL N` at owner clock `at`: N instances of that cell running, whatever their revision (clones: those placed hold their copy). */
export function scaleGoal (app: string, cell: string, replicas: number, at: number): PlacementGoal {
  return { app, at, cells: { [cell]: { replicas, clones: 0 } } }
}

/** an instance with the fields SPEC §6 gives `stem cells` (and `stem publish --json`), plus the revision it runs when known */
export type SpecCellListing = Pick<CellListing, 'address' | 'node' | 'state' | 'clones' | 'revision' | 'reason' | 'since'> & { current?: boolean }

export function specListing (c: CellListing): SpecCellListing {
  return { address: c.address, node: c.node, state: c.state, clones: c.clones, ...(c.revision !== undefined ? { revision: c.revision, current: c.current } : {}), ...(c.reason !== undefined ? { reason: c.reason, since: c.since } : {}) }
}

export interface PlacementStatus {
  /** one line: per cell, instances running and clones ready */
  line: string
  /** every instance runs and every placed clone holds its copy */
  ready: boolean
  failed: CellListing[]
}

export function placementStatus (goal: PlacementGoal, cells: CellListing[]): PlacementStatus {
  let ready = true
  const parts = Object.entries(goal.cells).map(([name, spec]) => {
    const instances = cells.filter(c => c.address.startsWith(`${goal.app}/${name}#`))
    // an instance still on another revision than the published one is not there yet
    const running = instances.filter(c => c.state === 'transformed' && (spec.revision === undefined || c.revision === spec.revision)).length
    const placed = instances.reduce((n, c) => n + c.clones.length, 0)
    const held = instances.reduce((n, c) => n + c.clonesReady.length, 0)
    const wanted = spec.replicas * spec.clones
    if (instances.length < spec.replicas || running < instances.length || held < placed) ready = false
    let part = `${name} ${running}/${spec.replicas} running`
    // a clone never shares a node with its instance: a small mesh may hold fewer than asked
    if (wanted > 0) part += `, clones ${held}/${placed} ready${placed < wanted ? ` (${placed} of ${wanted} placed)` : ''}`
    return part
  })
  return { line: `placing ${goal.app}: ${parts.join('; ')}`, ready, failed: cells.filter(c => c.state === 'failed') }
}

const FAILED_GRACE_MS = 5000

export interface FollowOptions {
  /** ms to wait for the placement */
  timeout: number
  signal?: AbortSignal
  /** ms an instance may stay failed (the leader retrying) before the publish fails (default 5 s) */
  failedGrace?: number
  /** ms between polls (default 250) */
  interval?: number
  /** what was done to the app, for the timeout error (default `published`) */
  action?: string
}

/** Polls the node's view of the app, showing its placement as a progress step, until it is ready; throws a one-line CliError if an instance failed or on timeout. */
export async function followPlacement (client: ApiClient, goal: PlacementGoal, progress: Progress, options: FollowOptions): Promise<CellListing[]> {
  const deadline = Date.now() + options.timeout
  const failingSince = new Map<string, number>()
  for (;;) {
    options.signal?.throwIfAborted()
    const listing = await client.get<AppCellsListing[]>(`/v1/cells?app=${encodeURIComponent(goal.app)}`, options.signal).catch(() => [])
    const app = listing.find(a => a.app === goal.app)
    const cells = app?.cells ?? []
    const status = placementStatus(goal, cells)
    progress.step(status.line)
    const rolledBack = app?.rollbacks.find(r => r.at === goal.at && r.revision === goal.cells[r.cell]?.revision)
    if (rolledBack !== undefined) {
      progress.clear()
      throw new CliError(`${goal.app}/${rolledBack.cell}: the new code failed and was rolled back, the previous revision keeps serving: ${rolledBack.error}`)
    }
    // the leader retries a failed start (a node busy or briefly unreachable): only a
    // failure that lasts is the publish's failure
    const now = Date.now()
    for (const c of cells) {
      if (c.state === 'transformed') failingSince.delete(c.address)
      else if (c.state === 'failed' && !failingSince.has(c.address)) failingSince.set(c.address, now)
    }
    const lasting = cells.filter(c => c.state === 'failed' && now - (failingSince.get(c.address) ?? now) >= (options.failedGrace ?? FAILED_GRACE_MS))
    if (lasting.length > 0) {
      progress.clear()
      throw new CliError(`${lasting.map(c => c.address).join(', ')} failed to start on ${lasting.map(c => c.node).join(', ')} (see the log of the app's leader, \`stem apps\`)`)
    }
    if (status.ready) return cells
    if (Date.now() > deadline) {
      progress.clear()
      throw new CliError(`${goal.app} was ${options.action ?? 'published'} but not placed after ${Math.round(options.timeout / 1000)} s (${status.line.slice('placing '.length)}); see \`stem cells ${goal.app}\``)
    }
    await delay(options.interval ?? 250, undefined, { signal: options.signal })
  }
}
