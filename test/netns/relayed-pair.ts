// Two homes that cannot punch a hole to each other (a symmetric NAT on at least one side):
// the routers' NAT modes a test needs, and what it checks of such a pair.
import assert from 'node:assert/strict'
import { waitFor } from '../support/wait.js'
import type { StemProcess } from '../support/stem-process.js'
import { counterAcross, netnsCall, nsOf, pathBetween, webrtcUpgrades, type NetnsLayout } from './netns-stem.js'

export type NatMode = 'cone' | 'symmetric'

/**
 * Switches the routers of the given homes to the given NAT modes where run.sh built them
 * otherwise (--symmetric); returns what puts them back (later tests expect run.sh's routers).
 */
export async function switchNatModes (layout: NetnsLayout, modes: Record<string, NatMode>): Promise<() => Promise<void>> {
  const switched: Array<[string, NatMode]> = []
  for (const [home, mode] of Object.entries(modes)) {
    const built: NatMode = layout.symmetric.includes(Number(home.slice(4))) ? 'symmetric' : 'cone'
    if (built === mode) continue
    await netnsCall(layout, 'netns_nat_mode', nsOf(layout, home), mode)
    switched.push([home, built])
  }
  return async () => {
    for (const [home, built] of switched.splice(0)) await netnsCall(layout, 'netns_nat_mode', nsOf(layout, home), built)
  }
}

/**
 * The two homes of a started mesh reach each other only through the relay: both list the
 * other as `relayed`, /metrics counts a failed WebRTC attempt and none that succeeded, and
 * asks between them (the counter on one, its clone on the other) work over the relay.
 */
export async function expectRelayedPair (layout: NetnsLayout, nodes: Map<string, StemProcess>, homes: [string, string]): Promise<void> {
  const started = Date.now()
  const since = (): string => `${((Date.now() - started) / 1000).toFixed(1)}s`
  const [a, b] = homes
  await waitFor(async () => await pathBetween(layout, nodes, a, b) === 'relayed' && await pathBetween(layout, nodes, b, a) === 'relayed',
    { timeout: 120_000, what: `${a} and ${b} to reach each other through the relay` })
  console.log(`netns: homes relayed after ${since()}`)

  // the smaller id tries at once, the other after 15 s; an attempt gives up within its 30 s
  // deadline (libp2p's WebRTC dial aborts after about 6 s here) and the next waits about
  // 5 s, doubling: a failure shows well within two minutes of being relayed
  const failed = await waitFor(async () => {
    const counts = await Promise.all(homes.map(async h => webrtcUpgrades(layout, nodes, h)))
    if (counts.some(c => c.succeeded > 0)) assert.fail(`a WebRTC upgrade succeeded between ${a} and ${b}:\n${counts.map(c => c.text).join('')}`)
    return counts[0].failed + counts[1].failed >= 1 && counts
  }, { timeout: 120_000, what: 'a failed WebRTC attempt in /metrics' })
  console.log(`netns: a failed WebRTC attempt counted after ${since()}:\n${failed.map((c, i) => `${homes[i]}: ${c.text}`).join('')}`)
  for (const [x, y] of [[a, b], [b, a]]) assert.equal(await pathBetween(layout, nodes, x, y), 'relayed', `${x} reaches ${y}`)

  const { caller, increment } = await counterAcross(layout, nodes, homes)
  for (let i = 1; i <= 3; i++) assert.equal(await increment(), i)
  const other = caller === a ? b : a
  assert.equal(await pathBetween(layout, nodes, caller, other), 'relayed', `${caller} reaches ${other} after the asks`)
  const counts = await Promise.all(homes.map(async h => webrtcUpgrades(layout, nodes, h)))
  assert.equal(counts[0].succeeded + counts[1].succeeded, 0, `no WebRTC upgrade succeeded:\n${counts.map(c => c.text).join('')}`)
  console.log(`netns: asks over the relay done after ${since()}`)
}
