// A bare libp2p node with the services of a Stem mesh member (the same createMeshLibp2p:
// TCP, pnet, Noise, Yamux, identify, ping, relay, DCUtR, Kademlia, gossipsub on the mesh's
// two topics) and nothing of Stem above it: `bench idle`'s baseline, run as its own process.
// argv: <mesh key hex> [<multiaddr to dial>]; prints `listen: <multiaddr>` once started.
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createMeshLibp2p } from '../../src/mesh/libp2p.js'
import { meshProtocols } from '../../src/mesh/mesh-config.js'

const [keyHex, dial] = process.argv.slice(2)
if (keyHex === undefined || !/^[0-9a-f]{64}$/.test(keyHex)) throw new Error('idle-bare-node: the first argument must be a 32-byte mesh key in hex')
const mesh = { name: 'idle-bench', key: Uint8Array.from(Buffer.from(keyHex, 'hex')) }
const node = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), mesh, listen: ['/ip4/127.0.0.1/tcp/0'] })
await node.start()
const topics = meshProtocols(mesh.name)
node.services.pubsub.subscribe(topics.capacityTopic)
node.services.pubsub.subscribe(topics.leadersTopic)
if (dial !== undefined) await node.dial(multiaddr(dial))
const tcpAddr = node.getMultiaddrs().find(a => a.toString().includes('/tcp/') && !a.toString().includes('p2p-circuit'))
console.log(`listen: ${tcpAddr?.toString() ?? ''}`)
process.on('SIGTERM', () => { void Promise.resolve(node.stop()).then(() => process.exit(0)) })
