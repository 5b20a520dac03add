// Capacity gossip: every node publishes a signed advert of its capacity on
// stem/<mesh>/capacity every `interval` ms (a heartbeat, so the others can expire it)
// and at once when it changes; it verifies every advert it receives before it reaches
// the view. Gossip relays adverts, so the connection's remote peer says nothing about
// the author: the frame's signer must be the advertised peer instead.
import { TopicValidatorResult, type GossipSub, type Message, type SubscriptionChangeData } from '@libp2p/gossipsub'
import type { Connection, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { createFrameSigner, createFrameVerifier, type FrameVerifierOptions, type RejectReason } from '../wire/frame.js'
import type { PrivateKey } from '../wire/keys.js'
import { createLogger } from '../util/logger.js'
import { formatSize } from '../util/units.js'
import { decodeAdvert, encodeAdvert, resourcesProblem, type CapacityAdvert, type InstanceCondition, type Resources } from './capacity.js'
import { CapacityView } from './capacity-view.js'
import { meshProtocols } from './mesh-config.js'
import { FAULT_CHECKS, gossipConnection, gossipFault, gossipSnapshot, reopenGossip, type Gossip } from './gossip-repair.js'

export interface CapacityServiceComponents {
  pubsub: GossipSub
  privateKey: PrivateKey
  /** this node's current multiaddrs (as strings, with or without /p2p) */
  addresses: () => string[]
  /** this node's connections to a peer */
  connections: (peer: PeerId) => Connection[]
  /** close every connection to a peer (the gossip watchdog's last resort) */
  hangUp: (peer: PeerId) => Promise<void>
}

export interface CapacityServiceInit {
  mesh: string
  contributed: Resources
  /** a name people read for this node, advertised with its capacity */
  name?: string
  /** heartbeat interval in ms (default 2000) */
  interval?: number
  /** a peer is dropped after this many missed heartbeats (default 3) */
  missedPeriods?: number
  /** options of the frame verifier (size limit, windows) */
  verifier?: FrameVerifierOptions
}

/** Why an advert was refused: a frame-level reason, or one about the advert itself. */
export type AdvertRejectReason = RejectReason | 'malformed-advert' | 'peer-mismatch' | 'stale-version'

export interface CapacityService {
  readonly view: CapacityView
  readonly topic: string
  /** this node's name, as it advertises it */
  readonly name?: string
  start: () => Promise<void>
  /** publishes a signed 'leaving' advert, then stops */
  stop: () => Promise<void>
  /**
   * Graceful leave, first step: publishes a signed 'leaving' advert and stops the
   * heartbeat, while gossip and connections stay up, so peers stop placing work here
   * and move what runs here elsewhere before the node stops.
   */
  announceLeaving: () => Promise<void>
  contributed: () => Resources
  free: () => Resources
  /** change what this node contributes; published at once. Throws on invalid values. */
  setContributed: (change: Partial<Resources>) => Resources
  /** what is still free (the cells layer calls this as it places cells) */
  setFree: (free: Resources) => void
  /** recent rates to advertise from the next heartbeat on (CapacityAdvert.load); no advert of its own */
  setLoad: (load: Record<string, number>) => void
  /**
   * runs `sample` just before each heartbeat advert, for what changes without an event of
   * its own (rates, held clones): one wake-up per heartbeat instead of a timer each;
   * returns its remover
   */
  beforeHeartbeat: (sample: () => void) => () => void
  /** the instances here that are not serving (CapacityAdvert.conditions): a change is advertised at once */
  setConditions: (conditions: Record<string, InstanceCondition>) => void
  /** rejected adverts by reason */
  rejections: () => Partial<Record<AdvertRejectReason, number>>
  /** the advert this node would publish now */
  currentAdvert: () => CapacityAdvert
  /** verify a received advert frame and apply it to the view (what the gossip validator runs) */
  receive: (frame: Uint8Array) => AdvertVerdict
}

/** applied: the view took it; ignored: ours or an older version; rejected: counted as an attack */
export type AdvertVerdict = { result: 'applied' | 'ignored' } | { result: 'rejected', reason: AdvertRejectReason }

const MAX_ADVERT_BYTES = 16 * 1024
const SUBSCRIBE_COALESCE_MS = 200

export function createCapacityService (components: CapacityServiceComponents, init: CapacityServiceInit): CapacityService {
  const log = createLogger('capacity')
  const interval = init.interval ?? 2000
  const topic = meshProtocols(init.mesh).capacityTopic
  const signer = createFrameSigner(components.privateKey)
  const verifier = createFrameVerifier({ maxBytes: MAX_ADVERT_BYTES, name: 'capacity', ...init.verifier })
  const view = new CapacityView({ missedPeriods: init.missedPeriods })
  // the implementation has more than its interface promises (gossip-repair.ts)
  const gossip: Gossip = components.pubsub
  const advertRejections: Partial<Record<AdvertRejectReason, number>> = {}
  const self = signer.peerId
  const problem = resourcesProblem(init.contributed)
  if (problem != null) throw new Error(problem)
  let contributed: Resources = { ...init.contributed }
  let free: Resources = { ...init.contributed }
  // starts from the clock so a restarted node's versions are above its previous run's
  let version = BigInt(Date.now())
  let lastAddrs = ''
  let leaving = false
  let load: Record<string, number> = {}
  let conditions: Record<string, InstanceCondition> = {}
  let heartbeat: ReturnType<typeof setInterval> | undefined
  let expiry: ReturnType<typeof setTimeout> | undefined
  /** when the armed expiry fires (ms since the epoch) */
  let expiryAt: number | undefined
  let subscribeTimer: ReturnType<typeof setTimeout> | undefined
  const samplers = new Set<() => void>()
  /** consecutive watchdog checks each member was seen in a gossip fault (gossipFault) */
  const faultChecks = new Map<string, number>()
  let publishQueued = false
  let running = false

  const rejectAdvert = (reason: AdvertRejectReason, detail: string): AdvertVerdict => {
    advertRejections[reason] = (advertRejections[reason] ?? 0) + 1
    log.debug(`rejected capacity advert: ${reason} ${detail}`)
    return { result: 'rejected', reason }
  }

  const currentAdvert = (): CapacityAdvert => {
    const addrs = components.addresses().map(a => a.replace(/\/p2p\/[^/]+$/, ''))
    const joined = addrs.join(' ')
    if (joined !== lastAddrs) { lastAddrs = joined; version++ }
    return { peer: self, addrs, contributed, free, version, leaving, interval, load, conditions, ...(init.name !== undefined ? { name: init.name } : {}) }
  }

  const publish = async (): Promise<void> => {
    const frame = signer.sign('capacity', encodeAdvert(currentAdvert()))
    try {
      await components.pubsub.publish(topic, frame)
    } catch (err) {
      log.debug(`publishing the capacity advert failed: ${(err as Error).message}`)
    }
  }

  /** coalesces changes made in the same tick into one advert */
  const publishSoon = (): void => {
    if (publishQueued || !running) return
    publishQueued = true
    queueMicrotask(() => { publishQueued = false; void publish() })
  }

  /**
   * Expiry runs when the earliest known peer falls due, not on a fixed beat: in a quiet
   * mesh every advert pushes that moment out, so the timer seldom fires, and a peer that
   * stops advertising is dropped at its due time to the millisecond.
   */
  const armExpiry = (): void => {
    clearTimeout(expiry)
    expiry = undefined
    expiryAt = view.nextExpiry()
    if (!running || expiryAt === undefined) return
    expiry = setTimeout(() => { view.expire(); armExpiry() }, Math.max(0, expiryAt - Date.now()))
  }

  /** the heartbeat: what has no event of its own is sampled, gossip checked, the advert sent */
  const beat = (): void => {
    for (const sample of samplers) {
      try { sample() } catch (err) { log.warn(`a heartbeat sample failed: ${(err as Error).message}`) }
    }
    checkGossipPeers()
    // with the advert a sampler's change queued: one advert
    publishSoon()
  }

  const receive = (data: Uint8Array): AdvertVerdict => {
    const result = verifier.verify(data, { forwarded: true, expect: 'capacity' })
    if (!result.ok) return { result: 'rejected', reason: result.reason }
    let advert: CapacityAdvert
    try {
      advert = decodeAdvert(result.payload)
    } catch (err) {
      return rejectAdvert('malformed-advert', (err as Error).message)
    }
    if (advert.peer !== result.sender) return rejectAdvert('peer-mismatch', `(advert for ${advert.peer} signed by ${result.sender})`)
    if (advert.peer === self) return { result: 'ignored' }
    if (view.apply(advert) === 'stale') {
      // an old version relayed late is not an attack: counted, not forwarded, not penalised
      advertRejections['stale-version'] = (advertRejections['stale-version'] ?? 0) + 1
      return { result: 'ignored' }
    }
    // a new peer, or one advertising a shorter interval, may fall due before the armed expiry
    if (running && (expiryAt === undefined || (view.nextExpiry() ?? Infinity) < expiryAt)) armExpiry()
    return { result: 'applied' }
  }

  const validate = (_from: PeerId, message: Message): TopicValidatorResult => {
    const verdict = receive(message.data)
    return verdict.result === 'applied' ? TopicValidatorResult.Accept : verdict.result === 'ignored' ? TopicValidatorResult.Ignore : TopicValidatorResult.Reject
  }

  /**
   * A peer that just subscribed learns our capacity soon rather than at the next
   * heartbeat. Many peers join at once when a mesh forms: one extra advert per
   * SUBSCRIBE_COALESCE_MS covers them all.
   */
  const onSubscriptionChange = (evt: CustomEvent<SubscriptionChangeData>): void => {
    if (subscribeTimer != null || !evt.detail.subscriptions.some(s => s.topic === topic && s.subscribe)) return
    subscribeTimer = setTimeout(() => { subscribeTimer = undefined; publishSoon() }, Math.min(SUBSCRIBE_COALESCE_MS, interval / 2))
  }

  /**
   * Gossip with a connected member can break while a connection to it stays open, and
   * gossipsub does not repair it (gossip-repair.ts): a member in a fault for its number of
   * checks gets our gossip stream reopened on an open connection.
   */
  const checkGossipPeers = (): void => {
    const snapshot = gossipSnapshot(gossip, topic)
    const candidates = new Set([...snapshot.peers, ...view.list().map(p => p.id)])
    for (const id of faultChecks.keys()) if (!candidates.has(id)) faultChecks.delete(id)
    for (const id of candidates) {
      const connection = gossipConnection(components.connections(peerIdFromString(id)))
      const fault = connection === undefined ? undefined : gossipFault(snapshot, id)
      if (connection === undefined || fault === undefined) { faultChecks.delete(id); continue }
      const checks = (faultChecks.get(id) ?? 0) + 1
      faultChecks.set(id, checks)
      if (checks < FAULT_CHECKS[fault]) continue
      faultChecks.delete(id)
      if (reopenGossip(gossip, connection.remotePeer, connection)) {
        log.info(`gossip with ${id} is stuck (${fault} after ${checks} checks): reopened its stream`)
      } else {
        log.info(`gossip with ${id} is stuck (${fault} after ${checks} checks): reconnecting`)
        components.hangUp(connection.remotePeer).catch(err => { log.debug(`hang up ${id} failed: ${(err as Error).message}`) })
      }
    }
  }

  /** how gossip stands with a peer whose adverts stopped: tells a dead peer from a gossip fault */
  const gossipState = (id: string): string => {
    const snapshot = gossipSnapshot(gossip, topic)
    if (!snapshot.peers.has(id)) return ''
    const subscribed = snapshot.subscribers.has(id)
    const mesh = gossip.getMeshPeers?.(topic).includes(id) ?? false
    const stream = snapshot.streams?.has(id) ?? false
    return `; still a gossip peer: subscribed ${subscribed ? 'yes' : 'no'}, stream to it ${stream ? 'yes' : 'no'}, in mesh ${mesh ? 'yes' : 'no'}, score ${gossip.getScore?.(id).toFixed(1) ?? 'unknown'}`
  }
  const describe = (r: Resources): string => `cpu ${r.cpu}, memory ${formatSize(r.memory)}, cells ${r.cells}`
  view.addEventListener('peer:seen', evt => { log.info(`peer seen ${evt.detail.id} (${describe(evt.detail.capacity)})`) })
  view.addEventListener('peer:updated', evt => { log.debug(`peer updated ${evt.detail.id} (${describe(evt.detail.capacity)})`) })
  view.addEventListener('peer:lost', evt => { log.info(`peer lost ${evt.detail.id} (${evt.detail.reason})${evt.detail.reason === 'expired' ? gossipState(evt.detail.id) : ''}`) })

  return {
    view,
    topic,
    name: init.name,
    currentAdvert,
    receive,
    contributed: () => ({ ...contributed }),
    free: () => ({ ...free }),
    rejections: () => {
      const out: Partial<Record<AdvertRejectReason, number>> = { ...advertRejections }
      for (const [reason, n] of Object.entries(verifier.counts())) if (n > 0) out[reason as RejectReason] = n
      return out
    },
    async start () {
      if (running) return
      running = true
      leaving = false
      components.pubsub.topicValidators.set(topic, validate)
      components.pubsub.subscribe(topic)
      components.pubsub.addEventListener('subscription-change', onSubscriptionChange)
      heartbeat = setInterval(beat, interval)
      armExpiry()
      await publish()
    },
    async stop () {
      if (!running) return
      running = false
      clearInterval(heartbeat)
      armExpiry()
      clearTimeout(subscribeTimer)
      subscribeTimer = undefined
      leaving = true
      version++
      await publish()
      components.pubsub.removeEventListener('subscription-change', onSubscriptionChange)
      components.pubsub.unsubscribe(topic)
      components.pubsub.topicValidators.delete(topic)
    },
    async announceLeaving () {
      if (!running || leaving) return
      clearInterval(heartbeat)
      leaving = true
      version++
      await publish()
    },
    setContributed (change) {
      const next = { ...contributed, ...Object.fromEntries(Object.entries(change).filter(([, v]) => v != null)) }
      const invalid = resourcesProblem(next)
      if (invalid != null) throw new Error(invalid)
      // what is in use stays in use: free shrinks or grows by the change
      free = {
        cpu: Math.max(0, free.cpu + next.cpu - contributed.cpu),
        memory: Math.max(0, free.memory + next.memory - contributed.memory),
        cells: Math.max(0, free.cells + next.cells - contributed.cells)
      }
      contributed = next
      version++
      publishSoon()
      return { ...contributed }
    },
    setLoad (next) {
      load = { ...next }
    },
    beforeHeartbeat (sample) {
      samplers.add(sample)
      return () => { samplers.delete(sample) }
    },
    setConditions (next) {
      if (JSON.stringify(next) === JSON.stringify(conditions)) return
      conditions = { ...next }
      version++
      publishSoon()
    },
    setFree (next) {
      const invalid = resourcesProblem(next)
      if (invalid != null) throw new Error(invalid)
      free = { ...next }
      version++
      publishSoon()
    }
  }
}
