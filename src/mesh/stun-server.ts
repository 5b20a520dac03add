// A STUN binding responder (RFC 5389) on a UDP port next to the node's libp2p TCP port:
// WebRTC peers of the mesh learn their public (server-reflexive) address from it, so the
// mesh needs no STUN server outside itself. Parsing is @msimerson/stun's; anything that is
// not a well-formed STUN message is dropped without an answer.
import stun from '@msimerson/stun'
import { createLogger } from '../util/logger.js'

export interface StunResponder {
  /** the UDP port it answers on */
  readonly port: number
  start: () => Promise<void>
  stop: () => void
}

export interface StunResponderInit {
  port: number
  /** address to bind (default every IPv4 address) */
  host?: string
}

const SOFTWARE = 'stem'

export function createStunResponder (init: StunResponderInit): StunResponder {
  const log = createLogger('stun')
  let server: ReturnType<typeof stun.createServer> | undefined
  return {
    port: init.port,
    async start () {
      if (server != null) return
      const s = stun.createServer({ type: 'udp4' })
      // malformed datagrams surface as errors of the library's parser: drop them
      s.on('error', (err: Error) => { log.debug(`dropped a datagram: ${err.message}`) })
      s.on(stun.constants.STUN_EVENT_BINDING_REQUEST, (request: { transactionId: Buffer }, rinfo: { address: string, port: number }) => {
        const response = stun.createMessage(stun.constants.STUN_BINDING_RESPONSE, request.transactionId)
        response.addXorAddress(rinfo.address, rinfo.port)
        response.addSoftware(SOFTWARE)
        response.addFingerprint()
        s.send(response, rinfo.port, rinfo.address)
      })
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject)
        s.listen(init.port, init.host ?? '0.0.0.0', () => { s.removeListener('error', reject); resolve() })
      })
      server = s
    },
    stop () {
      server?.close()
      server = undefined
    }
  }
}
