// A mesh is a name and a 256-bit pre-shared key (SPEC §2). The key is what keeps
// strangers out: libp2p pnet encrypts every connection with it before anything else.
import { randomBytes } from 'node:crypto'

export const MESH_KEY_LENGTH = 32
const MESH_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/

export interface MeshConfig {
  name: string
  /** the 32-byte pre-shared key */
  key: Uint8Array
}

export function generateMeshKey (): Uint8Array {
  return new Uint8Array(randomBytes(MESH_KEY_LENGTH))
}

/** A one-line reason the name is not a valid mesh name, or undefined if it is. */
export function meshNameProblem (name: string): string | undefined {
  if (MESH_NAME.test(name)) return undefined
  return `mesh name "${name}" is invalid: use 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit`
}

/** The key in the swarm.key format @libp2p/pnet's `preSharedKey({ psk })` expects. */
export function toSwarmKey (key: Uint8Array): Uint8Array {
  if (key.length !== MESH_KEY_LENGTH) throw new Error(`mesh key is ${key.length} bytes, expected ${MESH_KEY_LENGTH}`)
  return new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${Buffer.from(key).toString('hex')}`)
}

/** Protocol ids and topics of one mesh (SPEC §3). */
export function meshProtocols (name: string): { kad: string, capacityTopic: string, leadersTopic: string, raft: string, cell: string, code: string } {
  return {
    kad: `/stem/${name}/kad/1`,
    capacityTopic: `stem/${name}/capacity`,
    leadersTopic: `stem/${name}/leaders`,
    raft: `/stem/${name}/raft/1`,
    cell: `/stem/${name}/cell/1`,
    code: `/stem/${name}/code/1`
  }
}
