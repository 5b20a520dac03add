// The part of @msimerson/stun (a maintained fork of the `stun` package, CommonJS without
// types) that the mesh's STUN responder uses.
declare module '@msimerson/stun' {
  import type { RemoteInfo } from 'node:dgram'
  import type { EventEmitter } from 'node:events'

  export interface StunMessage {
    readonly transactionId: Buffer
    addXorAddress: (address: string, port: number) => void
    addSoftware: (software: string) => void
    addFingerprint: () => void
  }

  export interface StunServer extends EventEmitter {
    listen: (port: number, address?: string, callback?: () => void) => void
    send: (message: StunMessage, port: number, address: string, callback?: (err?: Error) => void) => void
    close: () => void
  }

  export interface StunResponse {
    getXorAddress: () => { address: string, port: number, family: string } | undefined
  }

  export function createServer (options: { type: 'udp4' | 'udp6' }): StunServer
  /** the library's client: one binding request to `url` (stun:host:port), retried */
  export function request (url: string, options?: { socket?: import('node:dgram').Socket, retries?: number, timeout?: number }): Promise<StunResponse>
  export function createMessage (type: number, transactionId?: Buffer): StunMessage
  export const constants: {
    STUN_BINDING_REQUEST: number
    STUN_BINDING_RESPONSE: number
    STUN_EVENT_BINDING_REQUEST: string
  }
  const stun: {
    createServer: typeof createServer
    createMessage: typeof createMessage
    constants: typeof constants
    request: typeof request
  }
  export default stun
}
