// The dashboard page in a real browser (Debian's chromium, driven by playwright-core):
// it shows the mesh, then follows a node loss and a failover live, without a reload; a
// click on a cell shows its log and its app's stream lag.
import { strict as assert } from 'node:assert'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { launchChromiumOrSkip } from '../support/chromium.js'
import { peerA, peerB, peerC, startDashboard, type TestDashboard } from './helpers.js'
import type { DashboardStreamPartition } from '../../src/dashboard/types.js'

const artifacts = join(process.cwd(), 'test', 'artifacts')

describe('dashboard in a browser', function () {
  let browser: Browser | undefined
  let dash: TestDashboard | undefined

  before(async function () {
    browser = await launchChromiumOrSkip(this)
  })

  after(async () => {
    await browser?.close()
    await dash?.close()
  })

  it('shows 3 nodes and the app, then a lost node and a failover without reloading', async () => {
    dash = await startDashboard({ refreshMs: 60_000, coalesceMs: 20 })
    dash.feed.record('peer-joined', `node ${peerB} joined`)
    dash.feed.record('peer-joined', `node ${peerC} joined`)
    dash.feed.record('rollout', 'shop: 3 cells placed')
    const page = await browser!.newPage({ viewport: { width: 1360, height: 900 } })
    const problems: string[] = []
    page.on('pageerror', err => problems.push(err.message))
    page.on('console', msg => { if (msg.type() === 'error') problems.push(msg.text()) })
    page.on('requestfailed', req => problems.push(`request failed: ${req.url()}`))
    const external: string[] = []
    page.on('request', req => { if (!req.url().startsWith(dash!.url)) external.push(req.url()) })

    await page.goto(dash.url + '/dashboard')
    await page.locator('.conn-live').waitFor({ timeout: 20_000 })
    assert.equal(await page.locator('g.node').count(), 3)
    assert.equal(await page.locator('g.node.lost').count(), 0)
    assert.equal(await page.locator('[data-count="nodes"]').textContent(), '3')
    assert.equal(await page.locator('tr[data-app="shop"]').count(), 1)
    assert.match(await page.locator('tr[data-app="shop"]').textContent() ?? '', /shop.*…AAAAa1.*3/)
    assert.equal(await page.locator('tr[data-cell]').count(), 3)
    assert.equal(await page.locator('.event').count(), 3)
    // this node's links by path: C, reached only through a relay, dashed; B (webrtc) solid
    assert.equal(await page.locator('.mesh-links line.relayed').count(), 1)
    assert.equal(await page.locator(`.mesh-links line.relayed[data-peer="${peerC}"]`).count(), 1)
    assert.equal(await page.locator(`.mesh-links line.webrtc[data-peer="${peerB}"]`).count(), 1)
    assert.equal(await page.locator('.mesh-links line.others').count(), 1, 'B–C: not this node\'s link')
    const dashes = async (cls: string): Promise<unknown> => page.evaluate(`getComputedStyle(document.querySelector('.mesh-links line.${cls}')).strokeDasharray`)
    assert.notEqual(await dashes('relayed'), 'none')
    assert.equal(await dashes('webrtc'), 'none')
    mkdirSync(artifacts, { recursive: true })
    await page.screenshot({ path: join(artifacts, 'dashboard.png'), fullPage: true })

    // a marker on the window survives only if the page is never reloaded
    await page.evaluate('window.stemMarker = 42')

    // node A (the shop leader) is lost; the group elects B in a new term and the counter fails over to C
    const mesh = dash.mesh
    mesh.nodes.splice(2, 1) // C is lost
    mesh.apps[0] = { ...mesh.apps[0], leader: peerB, term: 4, members: [peerA, peerB] }
    mesh.cells[0] = { ...mesh.cells[0], node: peerB, clones: [] }
    mesh.cells.splice(2, 1)
    dash.feed.record('peer-lost', `node ${peerC} lost (missed heartbeats)`)
    dash.feed.record('failover', 'shop: leader is now …BBBBb2 (term 4)')
    dash.feed.changed()

    await page.locator('g.node.lost').waitFor({ timeout: 20_000 })
    await page.locator('.event.kind-failover').waitFor({ timeout: 20_000 })
    await page.waitForFunction('document.querySelector(\'[data-count="nodes"]\')?.textContent === "2"', undefined, { timeout: 20_000 })
    assert.equal(await page.locator('g.node').count(), 3, 'the lost node stays visible as a ghost')
    assert.equal(await page.locator(`g.node.lost[data-node="${peerC}"]`).count(), 1)
    assert.equal(await page.locator('.mesh-links line.relayed').count(), 0, 'a lost node has no link')
    assert.match(await page.locator('tr[data-app="shop"]').textContent() ?? '', /…BBBBb2.*4/)
    assert.equal(await page.locator('tr[data-cell]').count(), 2)
    assert.equal(await page.evaluate('window.stemMarker'), 42, 'no reload happened')
    await page.screenshot({ path: join(artifacts, 'dashboard-failover.png'), fullPage: true })
    await page.emulateMedia({ colorScheme: 'dark' })
    await page.screenshot({ path: join(artifacts, 'dashboard-dark.png'), fullPage: true })

    assert.deepEqual(external, [], 'the page loads nothing from outside the node')
    assert.deepEqual(problems, [])
  })

  it('a click on a cell shows its log and the lag of its app\'s streams, per partition and group', async () => {
    await dash?.close()
    const rows: DashboardStreamPartition[] = [
      { stream: 'orders', partition: 0, next: 7, groups: [{ group: 'worker', acked: 6, lag: 0 }] },
      { stream: 'orders', partition: 1, next: 9, groups: [{ group: 'worker', acked: 4, lag: 4 }] },
      { stream: 'orders.dead', partition: 0, next: 0, groups: [] }
    ]
    const asked: string[] = []
    dash = await startDashboard({ logs: async () => [], streams: async app => { asked.push(app); return rows } })
    const page = await browser!.newPage({ viewport: { width: 1360, height: 900 } })
    const problems: string[] = []
    page.on('pageerror', err => problems.push(err.message))
    await page.goto(dash.url + '/dashboard')
    await page.locator('tr[data-cell]').first().click()
    await page.locator('.streams tr[data-partition="orders/1"]').waitFor({ timeout: 20_000 })
    assert.ok(asked.includes('shop'), asked.join(' '))
    assert.match(await page.locator('.streams tr[data-partition="orders/1"]').textContent() ?? '', /orders\s*1\s*9\s*worker\s*4\s*4/)
    assert.equal(await page.locator('.streams td.lag.behind').count(), 1)
    assert.match(await page.locator('.streams tr[data-partition="orders.dead/0"]').textContent() ?? '', /no consumer/)
    await page.screenshot({ path: join(artifacts, 'dashboard-streams.png'), fullPage: true })
    assert.deepEqual(problems, [])
  })
})
