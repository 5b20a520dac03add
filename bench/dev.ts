// The dev loop (issue 19) on a 3-node mesh of real `stem` processes, with the app of
// `stem new`:
//   dev-republish   from saving the cell file to the new code answering through a gateway,
//                   its state kept (the count goes on), while `stem dev` runs; beside the
//                   same change published by running `stem publish` after the save
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { repoRoot, runToEnd, stem, stopAll } from '../scripts/support/stem-process.js'
import { gatewayOf, startMesh } from '../scripts/support/stem-mesh.js'
import { percentile } from './support/stats.js'

const SAVES = 5
const stemBin = join(repoRoot, 'bin', 'stem.js')

interface Answer { message?: string, greeted?: number }

async function hello (gateway: string): Promise<Answer> {
  const res = await fetch(`${gateway}/bench-dev/hello/Ada`, { signal: AbortSignal.timeout(5000) })
  return res.status === 200 ? await res.json() as Answer : {}
}

/** writes the cell greeting with `word`, then `publish()`; ms until the gateway answers with it, the count going on */
async function saveAndWait (cell: string, template: string, word: string, gateway: string, publish: () => Promise<void>): Promise<number> {
  const before = (await hello(gateway)).greeted ?? 0
  const start = performance.now()
  await writeFile(cell, template.replace('Hello, ', `${word}, `))
  await publish()
  const deadline = start + 120_000
  for (;;) {
    const answer = await hello(gateway).catch((): Answer => ({}))
    if (answer.message === `${word}, Ada!`) {
      if ((answer.greeted ?? 0) <= before) throw new Error(`the state was not kept: greeted ${answer.greeted} after ${before}`)
      return performance.now() - start
    }
    if (performance.now() > deadline) throw new Error(`the ${word} code did not answer within 120 s`)
    await delay(5)
  }
}

async function main (): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'stem-bench-dev-'))
  const nodes = await startMesh(3)
  const data = nodes[0].dataDir
  const gateway = gatewayOf(nodes[1].process)
  let dev: ReturnType<typeof spawn> | undefined
  try {
    const made = await runToEnd(process.execPath, ['--no-node-snapshot', stemBin, 'new', 'bench-dev'], { cwd: work })
    if (made.code !== 0) throw new Error(`stem new: ${made.stderr}`)
    const manifest = join(work, 'bench-dev', 'app.yaml')
    const cell = join(work, 'bench-dev', 'bench-dev.js')
    const template = await readFile(cell, 'utf8')
    const published = await stem(['publish', manifest, '--data', data])
    if (published.code !== 0) throw new Error(`stem publish: ${published.stderr}`)

    const plain: number[] = []
    for (let i = 0; i < SAVES; i++) {
      plain.push(await saveAndWait(cell, template, `Plain${i}`, gateway, async () => {
        const r = await stem(['publish', manifest, '--data', data])
        if (r.code !== 0) throw new Error(`stem publish: ${r.stderr}`)
      }))
    }

    dev = spawn(process.execPath, ['--no-node-snapshot', stemBin, 'dev', manifest, '--data', data, '--no-logs'], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    dev.stdout?.on('data', (d: Buffer) => { out += d.toString() })
    const ready = performance.now() + 60_000
    while (!/watching/.test(out)) {
      if (performance.now() > ready || dev.exitCode !== null) throw new Error(`stem dev did not start: ${out}`)
      await delay(20)
    }
    const watched: number[] = []
    for (let i = 0; i < SAVES; i++) watched.push(await saveAndWait(cell, template, `Dev${i}`, gateway, async () => {}))

    const d50 = percentile(watched, 0.5)
    const p50 = percentile(plain, 0.5)
    console.log(`bench dev-republish: p50 ${Math.round(d50)} ms from saving a cell file to the new code answering with its state kept, stem dev on 3 nodes, ${SAVES} saves (stem publish of the same change p50 ${Math.round(p50)} ms, ratio ${(d50 / p50).toFixed(2)})`)
  } finally {
    dev?.kill('SIGINT')
    await stopAll()
    await rm(work, { recursive: true, force: true })
  }
}

await main()
