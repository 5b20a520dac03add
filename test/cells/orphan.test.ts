import { describe, it, after } from 'mocha'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { waitFor } from '../support/wait.js'
import { processGone } from './helpers.js'

describe('cells: no cell host outlives its node', () => {
  const children: number[] = []
  after(() => { for (const pid of children) { try { process.kill(pid, 'SIGKILL') } catch {} } })

  it('a cell host exits by itself when its node is killed with SIGKILL', async () => {
    const script = fileURLToPath(new URL('./fixtures/node-with-cells.js', import.meta.url))
    const node = spawn(process.execPath, ['--no-node-snapshot', script], { stdio: ['ignore', 'pipe', 'inherit'] })
    children.push(node.pid as number)
    let out = ''
    node.stdout.on('data', (d: Buffer) => { out += d.toString() })
    const hostPid = await waitFor(() => { const m = /host (\d+)/.exec(out); return m !== null ? Number(m[1]) : undefined }, { what: 'node to start a cell host' })
    children.push(hostPid)
    assert.equal(processGone(hostPid), false)
    node.kill('SIGKILL')
    await waitFor(() => processGone(hostPid), { what: 'orphaned cell host to exit' })
  })
})
