// A plain libp2p node on loopback for raft tests and benches (TCP, noise, yamux,
// identify). The mesh layer's node factory replaces this in the product.
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Libp2p, PrivateKey } from '@libp2p/interface'

export async function createTestLibp2p (privateKey: PrivateKey, port = 0, host = '127.0.0.1'): Promise<Libp2p> {
  return createLibp2p({
    privateKey,
    addresses: { listen: [`/ip4/${host}/tcp/${port}`] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  })
}

/** Tells `node` where `peer` listens and connects to it (errors ignored: raft re-dials). */
export async function introduce (node: Libp2p, peer: string, addrs: string[]): Promise<void> {
  const id = peerIdFromString(peer)
  await node.peerStore.merge(id, { multiaddrs: addrs.map(a => multiaddr(a)) })
  await node.dial(id, { signal: AbortSignal.timeout(5000) }).catch(() => {})
}
