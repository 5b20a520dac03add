// Test nodes for the messaging layer: real libp2p (TCP, Noise, Yamux, identify, kad-dht on
// /stem/<mesh>/kad/1) on 127.0.0.1, a real cell runtime with cell host processes, the
// bundle exchange and cell messaging, all sharing one static directory per test.
import { createLibp2p } from 'libp2p'
import type { Libp2p } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import type { Identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import type { Ping } from '@libp2p/ping'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import type { KadDHT } from '@libp2p/kad-dht'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createCellRuntime } from '../../src/cells/runtime.js'
import type { CellRuntime, CellRuntimeInit } from '../../src/cells/runtime.js'
import { createEd25519Key } from '../../src/wire/keys.js'
import type { PrivateKey } from '../../src/wire/keys.js'
import { createFrameSigner } from '../../src/wire/frame.js'
import { createCellMessaging } from '../../src/messaging/cell-messaging.js'
import type { CellMessaging, CellMessagingInit } from '../../src/messaging/cell-messaging.js'
import { createBundleExchange } from '../../src/messaging/code-exchange.js'
import type { BundleExchange } from '../../src/messaging/code-exchange.js'
import { createBundleStore } from '../../src/messaging/bundle-store.js'
import type { BundleStore } from '../../src/messaging/bundle-store.js'
import type { CellDirectory } from '../../src/messaging/directory.js'

export const MESH = 'test'

export type TestLibp2p = Libp2p<{ identify: Identify, ping: Ping, dht: KadDHT }>

export interface TestNode {
  key: PrivateKey
  id: string
  libp2p: TestLibp2p
  runtime: CellRuntime
  store: BundleStore
  bundles: BundleExchange
  messaging: CellMessaging
  dir: string
  stop: () => Promise<void>
}

export interface TestNodeOptions {
  messaging?: Partial<CellMessagingInit>
  runtime?: CellRuntimeInit
}

export async function createLibp2pNode (key: PrivateKey): Promise<TestLibp2p> {
  return await createLibp2p({
    privateKey: key,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({ protocol: `/stem/${MESH}/kad/1`, clientMode: false, peerInfoMapper: passthroughMapper })
    }
  })
}

export async function createTestNode (directory: CellDirectory, options: TestNodeOptions = {}): Promise<TestNode> {
  const key = await createEd25519Key()
  const dir = mkdtempSync(join(tmpdir(), 'stem-messaging-'))
  const libp2p = await createLibp2pNode(key)
  const runtime = createCellRuntime({ dataDir: join(dir, 'data'), heartbeatInterval: 500, ...options.runtime })
  runtime.start()
  const signer = createFrameSigner(key)
  const store = createBundleStore(join(dir, 'bundles'))
  const bundles = createBundleExchange({ libp2p, store, signer }, { mesh: MESH })
  const messaging = createCellMessaging({ libp2p, runtime, directory, signer, bundles }, { mesh: MESH, ...options.messaging })
  await bundles.start()
  await messaging.start()
  return {
    key,
    id: libp2p.peerId.toString(),
    libp2p,
    runtime,
    store,
    bundles,
    messaging,
    dir,
    async stop () {
      await messaging.stop()
      await bundles.stop()
      await runtime.stop()
      await libp2p.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** Connect every node to every other. */
export async function connectAll (nodes: TestNode[]): Promise<void> {
  for (let i = 0; i < nodes.length; i++) {
    for (let j = i + 1; j < nodes.length; j++) await nodes[i].libp2p.dial(nodes[j].libp2p.getMultiaddrs()[0])
  }
}
