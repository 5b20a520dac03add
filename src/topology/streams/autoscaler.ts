// The app leader's side of autoscale (manifest `autoscale: { min, max, lag }`): every
// SAMPLE_MS it reads the lag of each autoscaled consumer group (the `info` of every
// partition of the streams it consumes as a group, wherever the partitions run), takes the
// decision of autoscale.ts, and commits a change through the app's Raft group as an
// `autoscale` command (app-state.ts), which changes the cell's replicas as `stem scale`
// does. Placement then places the new instances within the contributed capacity, and the
// partitions' pumps move partitions to them (stream-pump.ts: the old instance's cursor is
// acknowledged before the new one gets a record, so no effect is lost or doubled).
import type { PartitionInfo } from '../../cells/streams/partition-code.js'
import { partitionCell } from '../../cells/streams/partition.js'
import type { Logger } from '../../util/logger.js'
import type { AppState, AppCommand, ApplyResult } from '../app-state.js'
import { newId, type HostedApp } from '../app-groups.js'
import { decideAutoscale, defaultAutoscaleTiming, type AutoscaleMemory, type AutoscaleTiming } from './autoscale.js'

/** ms between two samples of an app's consumer lag */
const SAMPLE_MS = 1000

/** a partition's `info`, asked of its primary wherever it runs */
export type PartitionInfoPort = (address: string, options: { deadline: number }) => Promise<PartitionInfo>

export interface AutoscalerComponents {
  partitionInfo: PartitionInfoPort
  propose: (h: HostedApp, cmd: AppCommand) => Promise<ApplyResult>
  logger: Logger
}

/** The group lag of `cell` over every partition of the streams it consumes as a group; undefined when a partition did not answer. */
export async function consumerLag (state: AppState, cell: string, info: PartitionInfoPort, deadline: number): Promise<number | undefined> {
  const streams = (state.manifest.cells[cell]?.consumes ?? []).filter(c => c.mode === 'group').map(c => c.stream)
  const addresses = streams.flatMap(stream => Array.from({ length: state.manifest.streams?.[stream]?.partitions ?? 0 }, (_, i) => `${state.app}/${partitionCell(stream, i)}`))
  try {
    const infos = await Promise.all(addresses.map(async address => await info(address, { deadline })))
    // a group the partition has not seen yet has no lag there
    return infos.reduce((sum, i) => sum + (i.groups[cell]?.lag ?? 0), 0)
  } catch {
    return undefined
  }
}

export class Autoscaler {
  /** `app/cell` → what the decision remembers */
  private readonly memory = new Map<string, AutoscaleMemory>()
  /** app → when it was last sampled */
  private readonly sampledAt = new Map<string, number>()
  private readonly sampling = new Set<string>()
  private readonly timing: AutoscaleTiming

  constructor (private readonly components: AutoscalerComponents, timing: Partial<AutoscaleTiming> = {}) {
    this.timing = { ...defaultAutoscaleTiming, ...timing }
  }

  /** Called each controller round for an app this node leads: samples it when due, in the background. */
  round (h: HostedApp, state: AppState): void {
    const cells = Object.keys(state.manifest.cells).filter(c => state.manifest.cells[c].autoscale !== undefined && !state.reverted.includes(c))
    const now = Date.now()
    if (cells.length === 0 || state.dissolving || this.sampling.has(h.app) || now - (this.sampledAt.get(h.app) ?? 0) < SAMPLE_MS) return
    this.sampling.add(h.app)
    this.sampledAt.set(h.app, now)
    this.sample(h, state, cells).catch(err => { this.components.logger.warn(`app ${h.app}: autoscale: ${(err as Error).message}`) }).finally(() => { this.sampling.delete(h.app) })
  }

  /** This node no longer leads `app`: a new term starts its windows over. */
  forget (app: string): void {
    for (const key of [...this.memory.keys()]) if (key.startsWith(`${app}/`)) this.memory.delete(key)
    this.sampledAt.delete(app)
  }

  private async sample (h: HostedApp, state: AppState, cells: string[]): Promise<void> {
    const deadline = Date.now() + SAMPLE_MS * 2
    for (const cell of cells) {
      const spec = state.manifest.cells[cell]
      const auto = spec.autoscale
      if (auto === undefined) continue
      const lag = await consumerLag(state, cell, this.components.partitionInfo, deadline)
      // a partition that did not answer (failing over): no sample, the windows wait
      if (lag === undefined) continue
      const unplaced = (state.placement[cell] ?? []).filter(i => i.primary === null).length
      const key = `${h.app}/${cell}`
      const decision = decideAutoscale(auto, spec.replicas, { lag, unplaced }, this.memory.get(key) ?? {}, Date.now(), this.timing)
      if (decision.replicas === spec.replicas) { this.memory.set(key, decision.memory); continue }
      // the state moved on while the lag was read: decided again on the next sample
      if (h.state !== state) return
      const result = await this.components.propose(h, { id: newId(), kind: 'autoscale', cell, from: spec.replicas, replicas: decision.replicas })
      if (!result.ok) { this.components.logger.debug(`app ${h.app}: autoscale ${cell} not committed: ${result.error ?? ''}`); return }
      this.memory.set(key, decision.memory)
      this.components.logger.info(`app ${h.app}: autoscale ${cell} from ${spec.replicas} to ${decision.replicas} replicas: ${decision.reason ?? ''}`)
      // the next step is decided on the state this one made
      return
    }
  }
}
