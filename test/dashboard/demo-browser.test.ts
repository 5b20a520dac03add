// The dashboard of a real 3-node `stem demo` in a real browser (Debian's chromium, driven
// by playwright-core; skipped when absent): 3 nodes and the counter app; after a kill -9
// of the node running the counter, the lost node, the failover event and the counter on
// another node appear live, without a reload.
import { strict as assert } from 'node:assert'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { launchChromiumOrSkip } from '../support/chromium.js'
import { DemoProcess, groupAlive, parseBanner } from '../support/demo-process.js'
import { waitFor } from '../support/wait.js'

const artifacts = join(process.cwd(), 'test', 'artifacts')

describe('dashboard of a real demo in a browser', function () {
  this.timeout(240_000)
  let browser: Browser | undefined
  let demo: DemoProcess | undefined

  before(async function () {
    browser = await launchChromiumOrSkip(this)
  })

  after(async () => {
    await browser?.close()
    if (demo !== undefined && demo.exitCode === undefined) {
      demo.child.kill('SIGINT')
      await demo.exited
    }
  })

  it('shows 3 nodes and the counter, then the killed node lost and the counter on another node', async () => {
    demo = new DemoProcess([])
    const banner = parseBanner(await demo.banner())
    const victim = banner.nodes.find(n => n.pid === banner.kill)
    assert.ok(victim !== undefined, 'the banner names the node running the counter')

    const page = await browser!.newPage({ viewport: { width: 1360, height: 900 } })
    const problems: string[] = []
    page.on('pageerror', err => problems.push(err.message))
    await page.goto(banner.dashboard)
    await page.locator('.conn-live').waitFor({ timeout: 30_000 })
    const nodeCount = page.locator('[data-count="nodes"]')
    await waitFor(async () => await nodeCount.textContent() === '3', { timeout: 30_000, what: 'the page to count 3 nodes' })
    assert.equal(await page.locator('g.node').count(), 3)
    await page.locator('tr[data-app="counter"]').waitFor({ timeout: 30_000 })
    const cell = page.locator('tr[data-cell="counter/counter#0"]')
    await cell.waitFor({ timeout: 30_000 })
    assert.match(await cell.textContent() ?? '', new RegExp(`${victim.shortId}.*transformed`))
    mkdirSync(artifacts, { recursive: true })
    await page.screenshot({ path: join(artifacts, 'demo-dashboard.png'), fullPage: true })
    await page.evaluate(() => { (globalThis as { stemMarker?: number }).stemMarker = 42 })

    process.kill(victim.pid, 'SIGKILL')
    await waitFor(async () => await nodeCount.textContent() === '2', { timeout: 120_000, what: 'the page to count 2 nodes' })
    await waitFor(async () => {
      const text = await cell.textContent() ?? ''
      return !text.includes(victim.shortId) && text.includes('transformed')
    }, { timeout: 120_000, what: 'the page to show the counter running on another node' })
    await page.locator('.event.kind-peer-lost').waitFor({ timeout: 30_000 })
    await page.locator('.event.kind-failover').waitFor({ timeout: 30_000 })
    assert.match(await page.locator('.event.kind-failover').first().textContent() ?? '', /counter\/counter#0 moved from lost node/)
    assert.equal(await page.locator('g.node.lost').count(), 1, 'the lost node stays visible as a ghost')
    assert.equal(await page.evaluate(() => (globalThis as { stemMarker?: number }).stemMarker), 42, 'no reload happened')
    await page.screenshot({ path: join(artifacts, 'demo-dashboard-failover.png'), fullPage: true })
    assert.deepEqual(problems, [])

    demo.child.kill('SIGINT')
    assert.equal(await demo.exited, 0, demo.stderr)
    for (const pid of banner.pids) assert.equal(groupAlive(pid), false, `process group of node pid ${pid} is gone`)
  })
})
