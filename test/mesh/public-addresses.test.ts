import assert from 'node:assert/strict'
import type { NetworkInterfaceInfo } from 'node:os'
import { publicListenAddresses } from '../../src/mesh/public-addresses.js'

function nic (address: string, family: 'IPv4' | 'IPv6', internal = false): NetworkInterfaceInfo {
  const common = { address, netmask: '', mac: '00:00:00:00:00:00', internal, cidr: null }
  return family === 'IPv4' ? { ...common, family } : { ...common, family, scopeid: 0 }
}

// a cloud VM: loopback, a public IPv4 and IPv6 on eth0, a private docker bridge
const vm = {
  lo: [nic('127.0.0.1', 'IPv4', true), nic('::1', 'IPv6', true)],
  eth0: [nic('7.77.0.11', 'IPv4'), nic('2a01:4f8:1c1c:1::1', 'IPv6'), nic('fe80::1', 'IPv6')],
  docker0: [nic('172.17.0.1', 'IPv4')]
}
// a home server: only private addresses
const home = {
  lo: [nic('127.0.0.1', 'IPv4', true)],
  eth0: [nic('192.168.1.20', 'IPv4'), nic('fd00::20', 'IPv6'), nic('fe80::2', 'IPv6')]
}

describe('mesh/public-addresses', () => {
  it('expands wildcard listen addresses to the public addresses of their family', () => {
    assert.deepEqual(publicListenAddresses(['/ip4/0.0.0.0/tcp/4017'], vm), ['/ip4/7.77.0.11/tcp/4017'])
    assert.deepEqual(publicListenAddresses(['/ip6/::/tcp/4017'], vm), ['/ip6/2a01:4f8:1c1c:1::1/tcp/4017'])
    assert.deepEqual(publicListenAddresses(['/ip4/0.0.0.0/tcp/4017', '/ip6/::/tcp/4018'], vm), ['/ip4/7.77.0.11/tcp/4017', '/ip6/2a01:4f8:1c1c:1::1/tcp/4018'])
  })

  it('keeps a specific public listen address and drops private, loopback and link-local ones', () => {
    assert.deepEqual(publicListenAddresses(['/ip4/7.77.0.11/tcp/4017', '/ip4/127.0.0.1/tcp/4017', '/ip4/10.0.0.5/tcp/4017', '/ip6/fe80::1/tcp/4017'], vm), ['/ip4/7.77.0.11/tcp/4017'])
  })

  it('announces nothing for a home server behind NAT', () => {
    assert.deepEqual(publicListenAddresses(['/ip4/0.0.0.0/tcp/4017', '/ip6/::/tcp/4017'], home), [])
  })

  it('announces nothing for port 0, non-TCP, relayed or malformed listen addresses', () => {
    assert.deepEqual(publicListenAddresses(['/ip4/0.0.0.0/tcp/0', '/ip4/7.77.0.11/udp/4017', '/p2p-circuit', '/ip4/7.77.0.11/tcp/4017/ws', 'not a multiaddr', ''], vm), [])
  })

  it('lists an address once however many listen addresses lead to it', () => {
    assert.deepEqual(publicListenAddresses(['/ip4/0.0.0.0/tcp/4017', '/ip4/7.77.0.11/tcp/4017'], vm), ['/ip4/7.77.0.11/tcp/4017'])
  })
})
