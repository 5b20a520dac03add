import { strict as assert } from 'node:assert'
import { connect } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import { registerDashboard } from '../../src/dashboard/index.js'
import { loadDashboardAssets } from '../../src/dashboard/assets.js'
import type { DashboardSnapshot, NodeInfo, StreamMessages } from '../../src/dashboard/types.js'
import { waitFor } from '../support/wait.js'
import { GiB, openSse, peerB, peerC, startDashboard, within, type SseReader, type TestDashboard } from './helpers.js'

describe('dashboard server', () => {
  let dash: TestDashboard | undefined
  const readers: SseReader[] = []

  afterEach(async () => {
    for (const r of readers.splice(0)) r.close()
    await dash?.close()
    dash = undefined
  })

  const open = async (path = '/dashboard/events', headers?: Record<string, string>): Promise<SseReader> => {
    const reader = await openSse(dash!.url + path, headers)
    readers.push(reader)
    return reader
  }

  it('serves the page, its script and style from the node itself', async () => {
    dash = await startDashboard()
    const page = await fetch(dash.url + '/dashboard')
    assert.equal(page.status, 200)
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/)
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/)
    const html = await page.text()
    assert.match(html, /<script type="module" src="\/dashboard\/app\.js">/)
    assert.match(html, /<title>Stem · friends<\/title>/)
    assert.doesNotMatch(html, /https?:\/\//, 'no external resources')

    const js = await fetch(dash.url + '/dashboard/app.js')
    assert.equal(js.status, 200)
    assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/)
    const code = await js.text()
    assert.ok(code.includes('/dashboard/events'), 'the bundle opens the event stream')
    assert.doesNotMatch(code, /from\s*["']https?:/, 'no imports from a CDN')

    const css = await fetch(dash.url + '/dashboard/app.css')
    assert.equal(css.status, 200)
    assert.match(await css.text(), /prefers-color-scheme:\s*dark/)

    const root = await fetch(dash.url + '/', { redirect: 'manual' })
    assert.equal(root.status, 302)
    assert.equal(root.headers.get('location'), '/dashboard')
  })

  it('gives the current snapshot as JSON, with the CLI field names', async () => {
    dash = await startDashboard()
    const res = await fetch(dash.url + '/dashboard/state')
    assert.equal(res.status, 200)
    const snap = await res.json() as DashboardSnapshot
    assert.deepEqual(snap, JSON.parse(JSON.stringify(dash.feed.snapshot())))
    assert.deepEqual(Object.keys(snap.nodes[0]).sort(), ['addrs', 'capacity', 'free', 'id', 'lastSeen', 'self'])
    assert.deepEqual(snap.nodes.map(n => n.path), [undefined, 'webrtc', 'relayed'], 'how this node reaches each, as `stem peers` path')
    assert.deepEqual(Object.keys(snap.apps[0]).sort(), ['app', 'leader', 'members', 'owner', 'term'])
    assert.deepEqual(Object.keys(snap.cells[0]).sort(), ['address', 'app', 'clones', 'node', 'rate', 'state'])
  })

  it('streams a snapshot first, then patches of changed parts and events', async () => {
    dash = await startDashboard({ refreshMs: 60_000, heartbeatMs: 100 })
    const stream = await open()
    assert.equal(stream.status, 200)
    const first = await within(stream.next(), 20_000, 'first message')
    assert.equal(first.event, 'snapshot')
    assert.equal((first.data as DashboardSnapshot).nodes.length, 3)
    await waitFor(() => dash!.subscribers() === 1, { what: 'the feed to be watched' })

    dash.mesh.nodes.splice(1, 1)
    dash.feed.changed('nodes')
    const patch = await within(stream.next('patch'), 20_000, 'patch')
    const body = patch.data as StreamMessages['patch']
    assert.deepEqual(Object.keys(body), ['nodes'])
    assert.deepEqual(body.nodes?.map(n => n.id), [dash.mesh.nodes[0].id, peerC])

    dash.feed.record('peer-lost', `node ${peerB} lost`)
    const event = await within(stream.next('event'), 20_000, 'event')
    assert.equal((event.data as StreamMessages['event']).kind, 'peer-lost')

    await waitFor(() => stream.comments() > 0, { what: 'a heartbeat comment' })
  })

  it('sends full refreshes periodically so rates stay current', async () => {
    dash = await startDashboard({ refreshMs: 50 })
    const stream = await open()
    await stream.next('snapshot')
    dash.mesh.cells[0].rate = 99
    const patch = await waitFor(async () => {
      const p = (await stream.next('patch')).data as StreamMessages['patch']
      return p.cells?.[0].rate === 99 ? p : undefined
    }, { what: 'a refresh with the new rate' })
    assert.deepEqual(Object.keys(patch).sort(), ['apps', 'cells', 'nodes', 'self'])
  })

  it('watches the source only while a page is open', async () => {
    dash = await startDashboard()
    assert.equal(dash.subscribers(), 0)
    const a = await open()
    const b = await open()
    await a.next('snapshot')
    await b.next('snapshot')
    assert.equal(dash.subscribers(), 1)
    assert.equal(dash.handle.clients(), 2)
    a.close()
    b.close()
    await waitFor(() => dash!.handle.clients() === 0 && dash!.subscribers() === 0, { what: 'streams to be released' })
  })

  it('drops a client that stops reading instead of buffering for it', async function () {
    const maxBufferedBytes = 64 * 1024
    const many: NodeInfo[] = Array.from({ length: 600 }, (_, i) => ({
      id: `12D3KooWnode${String(i).padStart(40, '0')}`,
      addrs: [`/ip4/10.0.${i >> 8}.${i & 255}/tcp/4001`],
      capacity: { cpu: 8, memory: 16 * GiB, cells: 100 },
      free: { cpu: 4, memory: 8 * GiB, cells: 50 },
      lastSeen: Date.now()
    }))
    dash = await startDashboard({ maxBufferedBytes, coalesceMs: 1, refreshMs: 60_000 })
    dash.mesh.nodes.push(...many)
    const fast = await open()
    await fast.next('snapshot')

    // a client that sends its request and then never reads a byte
    const { port } = new URL(dash.url)
    const stalled = connect(Number(port), '127.0.0.1')
    stalled.on('error', () => {})
    stalled.write('GET /dashboard/events HTTP/1.1\r\nhost: x\r\naccept: text/event-stream\r\n\r\n')
    stalled.pause()
    try {
      await waitFor(() => dash!.handle.clients() === 2, { what: 'the stalled client to be connected' })
      let patches = 0
      await waitFor(async () => {
        dash!.feed.changed('nodes')
        await fast.next('patch') // the fast client keeps up
        patches++
        return dash!.handle.dropped() === 1
      }, { interval: 1, timeout: 60_000, what: 'the stalled client to be dropped' })
      assert.ok(patches > 1)
      assert.equal(dash.handle.clients(), 1)
      // the one that reads still gets updates
      dash.feed.record('info', 'still here')
      assert.equal(((await fast.next('event')).data as StreamMessages['event']).text, 'still here')
    } finally {
      stalled.destroy()
    }
  })

  it('refuses streams beyond maxClients', async () => {
    dash = await startDashboard({ maxClients: 1 })
    const a = await open()
    await a.next('snapshot')
    const res = await fetch(dash.url + '/dashboard/events')
    assert.equal(res.status, 503)
    assert.match(await res.text(), /too many dashboard streams/)
  })

  it('ends open streams when the server stops', async () => {
    dash = await startDashboard()
    const a = await open()
    const b = await open()
    await a.next('snapshot')
    await b.next('snapshot')
    await within(dash.close(), 20_000, 'fastify.close() with open streams')
    await within(Promise.all([a.ended, b.ended]), 20_000, 'streams to end')
    assert.equal(dash.subscribers(), 0)
  })

  it('with a tokenCheck, needs the token (header or query)', async () => {
    dash = await startDashboard({ tokenCheck: t => t === 's3cret' })
    assert.equal((await fetch(dash.url + '/dashboard/state')).status, 401)
    assert.equal((await fetch(dash.url + '/dashboard/state?token=nope')).status, 401)
    assert.equal((await fetch(dash.url + '/dashboard/state?token=s3cret')).status, 200)
    assert.equal((await fetch(dash.url + '/dashboard/state', { headers: { authorization: 'Bearer s3cret' } })).status, 200)
    assert.equal((await fetch(dash.url + '/dashboard')).status, 401)
    const denied = await fetch(dash.url + '/dashboard/events')
    assert.equal(denied.status, 401)
    const stream = await open('/dashboard/events?token=s3cret')
    assert.equal((await stream.next()).event, 'snapshot')
    const root = await fetch(dash.url + '/?token=s3cret', { redirect: 'manual' })
    assert.equal(root.headers.get('location'), '/dashboard?token=s3cret')
  })

  it('answers 503 (and keeps serving) when the source cannot give a snapshot', async () => {
    let broken = true
    const fastify = Fastify()
    registerDashboard(fastify, {
      source: {
        snapshot: () => {
          if (broken) throw new Error('capacity view not started')
          return { self: { id: 'x', mesh: 'm', addrs: [] }, nodes: [], apps: [], cells: [], events: [] }
        },
        subscribe: () => () => {}
      }
    })
    const url = await fastify.listen({ host: '127.0.0.1', port: 0 })
    try {
      assert.equal((await fetch(url + '/dashboard/state')).status, 503)
      assert.equal((await fetch(url + '/dashboard/events')).status, 503)
      assert.equal((await fetch(url + '/dashboard')).status, 200)
      broken = false
      assert.equal((await fetch(url + '/dashboard/state')).status, 200)
    } finally {
      await fastify.close()
    }
  })

  it('has only GET routes: nothing on the dashboard changes state', async () => {
    dash = await startDashboard()
    for (const path of ['/dashboard', '/dashboard/state', '/dashboard/events']) {
      for (const method of ['POST', 'PUT', 'DELETE']) {
        assert.equal((await fetch(dash.url + path, { method })).status, 404, `${method} ${path}`)
      }
    }
  })

  it('refuses bad options and reports missing assets clearly', () => {
    const source = { snapshot: () => { throw new Error('unused') }, subscribe: () => () => {} }
    assert.throws(() => registerDashboard(Fastify(), { source, refreshMs: 0 }), /refreshMs must be a positive number/)
    assert.throws(() => registerDashboard(Fastify(), { source, coalesceMs: Number.NaN }), /coalesceMs/)
    const empty = mkdtempSync(join(tmpdir(), 'stem-dash-'))
    try {
      assert.throws(() => loadDashboardAssets(empty), /dashboard assets missing in .* \(run npm run build\)/)
    } finally {
      rmSync(empty, { recursive: true, force: true })
    }
  })
})
