// A bare libp2p node on loopback (TCP, Noise, Yamux, identify): what the benches run
// Stem's components on, and the "raw libp2p" their baselines measure.
import { createLibp2p } from 'libp2p'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'

export async function createPlainLibp2p (privateKey: PrivateKey): Promise<Libp2p<{ identify: ReturnType<ReturnType<typeof identify>> }>> {
  return await createLibp2p({
    privateKey,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  })
}
