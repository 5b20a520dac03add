import assert from 'node:assert/strict'
import { APP_SNAPSHOT_VERSION, MAX_APP_SNAPSHOT_BYTES, decodeAppSnapshot, encodeAppSnapshot } from '../../src/topology/app-snapshot.js'
import type { AppCommand, AppState } from '../../src/topology/app-state.js'
import type { AppManifest } from '../../src/topology/manifest.js'
import { applyAll } from './support/apply-all.js'

const cell = (replicas = 1): AppManifest['cells'][string] => ({ code: './c.js', replicas, clones: 1, memory: 16 * 2 ** 20, timeout: 100, mailbox: 10, bundle: 'a'.repeat(64) })
const owner = { owner: 'alice', ownerKey: 'a-key' }

function sampleState (): AppState {
  const cmds: AppCommand[] = [
    { id: '1', kind: 'publish', ...owner, at: 1, manifest: { app: 'shop', cells: { counter: cell(), cart: cell(2) }, routes: [{ method: 'GET', path: '/c', cell: 'counter', handler: 'get' }] } },
    { id: '2', kind: 'place', placement: { counter: [{ primary: 'n1', clones: ['n2'] }], cart: [{ primary: 'n2', clones: [] }, { primary: null, clones: [] }] }, reservations: [{ id: 'r', node: 'n1', memory: 5, cells: 1, since: 3 }] },
    { id: '3', kind: 'scale', ...owner, at: 2, cell: 'cart', replicas: 1 }
  ]
  return applyAll(cmds).state as AppState
}

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes)
const bytesOf = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value))

describe('app snapshot codec', () => {
  it('round-trips the state, and the same state always encodes to the same bytes (canonical)', () => {
    const state = sampleState()
    const bytes = encodeAppSnapshot(state)
    assert.deepEqual(decodeAppSnapshot(bytes, 'shop'), state)
    // the same state built with its keys in another order
    const shuffled = Object.fromEntries(Object.entries(structuredClone(state)).reverse()) as unknown as AppState
    assert.equal(text(encodeAppSnapshot(shuffled)), text(bytes))
    assert.match(text(bytes), /^\{"format":"stem\/app-state","state":/)
    assert.equal(decodeAppSnapshot(encodeAppSnapshot(undefined), 'shop'), undefined)
  })

  it('refuses truncated, non-UTF-8, non-JSON and oversized input with one line', () => {
    const bytes = encodeAppSnapshot(sampleState())
    for (const cut of [1, 10, bytes.length / 2, bytes.length - 1]) {
      assert.throws(() => decodeAppSnapshot(bytes.subarray(0, cut), 'shop'), (err: Error) => /app snapshot of shop/.test(err.message) && !err.message.includes('\n'))
    }
    assert.throws(() => decodeAppSnapshot(Uint8Array.of(0xff, 0xfe, 0x7b), 'shop'), /not UTF-8/)
    assert.throws(() => decodeAppSnapshot(new Uint8Array(MAX_APP_SNAPSHOT_BYTES + 1), 'shop'), /too large/)
    assert.throws(() => decodeAppSnapshot(new TextEncoder().encode('['.repeat(5000)), 'shop'), /nested too deeply/)
  })

  it('refuses other formats, newer versions and forged states', () => {
    const good = JSON.parse(text(encodeAppSnapshot(sampleState()))) as { state: Record<string, unknown> }
    const forge = (change: (s: Record<string, unknown>) => void): Uint8Array => {
      const copy = structuredClone(good)
      change(copy.state)
      return bytesOf(copy)
    }
    assert.throws(() => decodeAppSnapshot(bytesOf({ format: 'other', version: 1, state: null }), 'shop'), /not a stem\/app-state snapshot/)
    assert.throws(() => decodeAppSnapshot(bytesOf({ format: 'stem/app-state', version: APP_SNAPSHOT_VERSION + 1, state: null }), 'shop'), /version 2, newer than this node reads \(1\): upgrade stem/)
    assert.throws(() => decodeAppSnapshot(bytesOf({ format: 'stem/app-state', state: null }), 'shop'), /no version/)
    // the state of another app, sent as this one's
    assert.throws(() => decodeAppSnapshot(encodeAppSnapshot(sampleState()), 'bank'), /holds the state of app shop/)
    const cases: Array<[(s: Record<string, unknown>) => void, RegExp]> = [
      [s => { s.owner = 7 }, /owner is not a string/],
      [s => { s.app = '../x' }, /app is not an app name/],
      [s => { s.placement = { counter: [{ primary: 5, clones: [] }] } }, /placement\.counter is malformed/],
      [s => { s.epochs = { 'shop/counter#0': -1 } }, /epochs\.shop\/counter#0 is malformed/],
      [s => { s.reservations = [{ id: 'r' }] }, /reservations is not a list/],
      [s => { (s.manifest as AppManifest).cells.counter.replicas = 1.5 }, /manifest\.cells\.counter replicas is not a whole number/],
      [s => { (s.manifest as AppManifest).cells.counter.bundle = 'zz' }, /bundle is not a sha256/],
      [s => { (s.manifest as AppManifest).app = 'bank' }, /manifest is for another app/],
      [s => { s.holders = { a: [{ node: 'n', epoch: 1, role: 'boss' }] } }, /holders\.a is malformed/],
      [s => { delete s.dissolving }, /dissolving is not a boolean/]
    ]
    for (const [change, error] of cases) assert.throws(() => decodeAppSnapshot(forge(change), 'shop'), error)
  })
})
