// Every Stem metric family in one registry (`GET /metrics`, Prometheus text format),
// plus prom-client's default process metrics. Components feed them in one of two ways:
//  - events that happen (a message, an ask, a rejected frame, a gateway request): the
//    component calls the handle (`metrics.messages.inc({ direction: 'in', kind: 'ask' })`);
//  - state that is (mailbox depths, cell states, Raft term, capacity): a source added with
//    addSource() reads the component when /metrics is scraped and sets the gauges, so
//    nothing has to be sprinkled through the component's code.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export type Direction = 'in' | 'out'
export type Resource = 'cpu' | 'memory' | 'cells'

export interface StemMetrics {
  readonly registry: Registry
  /** cell messages sent to and received from other nodes; kind: ask, tell, reply, transform */
  readonly messages: Counter<'direction' | 'kind'>
  /** time from an ask to its reply; scope: local (same node) or remote */
  readonly askLatency: Histogram<'scope'>
  /** messages (asks and tells) delivered to each cell instance on this node; cell: `name#i` */
  readonly cellMessages: Counter<'app' | 'cell'>
  /** messages waiting in a cell's mailbox; cell: `name#i` */
  readonly mailboxDepth: Gauge<'app' | 'cell'>
  /** cell instances on this node by state (stem, transformed, reverted, failed) */
  readonly cellStates: Gauge<'state'>
  readonly raftTerm: Gauge<'app'>
  readonly raftCommitIndex: Gauge<'app'>
  readonly raftLeaderChanges: Counter<'app'>
  /** frames refused on the wire; reason: signature, signer, replay, stale, size, decode, … */
  readonly rejectedFrames: Counter<'reason'>
  /** what this node contributes (cpu in cores, memory in bytes, cells in slots) */
  readonly capacityContributed: Gauge<'resource'>
  /** what is still free of it */
  readonly capacityFree: Gauge<'resource'>
  /** HTTP gateway requests by app and status code */
  readonly gatewayRequests: Counter<'app' | 'status'>
  /** WebRTC upgrades of relayed connections; result: tried, succeeded, failed (reason: timeout, denied, error) */
  readonly webrtcUpgrades: Counter<'result' | 'reason'>
  /** records of a stream partition its consumer group has not acknowledged yet (`stem stream`'s lag), for the partitions whose primary runs here */
  readonly streamLag: Gauge<'app' | 'stream' | 'partition' | 'group'>
  /** the offset the next record of a stream partition gets, for the partitions whose primary runs here */
  readonly streamNextOffset: Gauge<'app' | 'stream' | 'partition'>
  /** runs `source` before every scrape; returns the function that removes it */
  addSource: (source: () => void | Promise<void>) => () => void
  /** the exposition text (sources run first; one that throws is skipped and counted) */
  render: () => Promise<string>
  readonly contentType: string
}

export interface StemMetricsInit {
  /** prom-client default process metrics (cpu, memory, event loop, gc); default true */
  defaultMetrics?: boolean
}

/** ms between two samples of the event loop's delay (nodejs_eventloop_lag_* metrics) */
export const EVENT_LOOP_SAMPLE_MS = 500

export function createStemMetrics (init: StemMetricsInit = {}): StemMetrics {
  const registry = new Registry()
  const registers = [registry]
  // the event loop's delay is sampled every EVENT_LOOP_SAMPLE_MS: prom-client's default (10
  // ms) kept a timer that woke an idle node 100 times a second
  if (init.defaultMetrics !== false) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS })
  const sources = new Set<() => void | Promise<void>>()

  const sourceErrors = new Counter({ name: 'stem_metrics_source_errors_total', help: 'Metric sources that threw during a scrape', registers })

  const metrics: StemMetrics = {
    registry,
    messages: new Counter({ name: 'stem_messages_total', help: 'Cell messages sent to (out) and received from (in) other nodes, by kind', labelNames: ['direction', 'kind'], registers }),
    askLatency: new Histogram({
      name: 'stem_ask_duration_seconds',
      help: 'Time from an ask to its reply',
      labelNames: ['scope'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers
    }),
    cellMessages: new Counter({ name: 'stem_cell_messages_total', help: 'Messages (asks and tells) delivered to each cell instance on this node', labelNames: ['app', 'cell'], registers }),
    mailboxDepth: new Gauge({ name: 'stem_mailbox_depth', help: 'Messages queued in a cell mailbox', labelNames: ['app', 'cell'], registers }),
    cellStates: new Gauge({ name: 'stem_cells', help: 'Cell instances on this node by state', labelNames: ['state'], registers }),
    raftTerm: new Gauge({ name: 'stem_raft_term', help: 'Current Raft term of each app group this node is in', labelNames: ['app'], registers }),
    raftCommitIndex: new Gauge({ name: 'stem_raft_commit_index', help: 'Raft commit index of each app group this node is in', labelNames: ['app'], registers }),
    raftLeaderChanges: new Counter({ name: 'stem_raft_leader_changes_total', help: 'Leader changes seen per app group', labelNames: ['app'], registers }),
    rejectedFrames: new Counter({ name: 'stem_rejected_frames_total', help: 'Wire frames refused, by reason', labelNames: ['reason'], registers }),
    capacityContributed: new Gauge({ name: 'stem_capacity_contributed', help: 'Capacity this node contributes (cpu: cores, memory: bytes, cells: slots)', labelNames: ['resource'], registers }),
    capacityFree: new Gauge({ name: 'stem_capacity_free', help: 'Contributed capacity still free (cpu: cores, memory: bytes, cells: slots)', labelNames: ['resource'], registers }),
    gatewayRequests: new Counter({ name: 'stem_gateway_requests_total', help: 'HTTP gateway requests by app and status code', labelNames: ['app', 'status'], registers }),
    webrtcUpgrades: new Counter({ name: 'stem_webrtc_upgrades_total', help: 'WebRTC upgrades of relayed connections: tried, succeeded, failed by reason', labelNames: ['result', 'reason'], registers }),
    streamLag: new Gauge({ name: 'stem_stream_lag', help: 'Records of a stream partition not yet acknowledged by a consumer group (partitions whose primary runs on this node)', labelNames: ['app', 'stream', 'partition', 'group'], registers }),
    streamNextOffset: new Gauge({ name: 'stem_stream_next_offset', help: 'Offset of the next record of a stream partition (partitions whose primary runs on this node)', labelNames: ['app', 'stream', 'partition'], registers }),
    addSource: source => {
      sources.add(source)
      return () => { sources.delete(source) }
    },
    render: async () => {
      for (const source of [...sources]) {
        try {
          await source()
        } catch {
          sourceErrors.inc()
        }
      }
      return await registry.metrics()
    },
    get contentType () { return registry.contentType }
  }
  return metrics
}
