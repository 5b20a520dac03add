// docs/manifest.md and docs/cells.md stay true: every YAML example parses (or fails with
// the error its `# error:` line states), the key tables list exactly the keys the parser
// accepts with its defaults, every js/ts example bundles and loads as a cell (real
// esbuild, real isolate) and the ts ones type-check against stem/cell; the README links
// to the docs, not to a file outside the repository.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { bundleCode } from '../../src/cells/bundle-build.js'
import { classMethods } from '../../src/cells/class-methods.js'
import { cellDefaults, parseManifest, validateManifest } from '../../src/topology/manifest.js'
import { formatDuration, formatSize } from '../../src/util/units.js'

const root = process.cwd()
const read = (file: string): string => readFileSync(join(root, file), 'utf8')

interface Block { lang: string, text: string, line: number }

function blocks (markdown: string): Block[] {
  const out: Block[] = []
  const re = /^```(\w*)\n([\s\S]*?)^```$/gm
  for (let m = re.exec(markdown); m !== null; m = re.exec(markdown)) out.push({ lang: m[1], text: m[2], line: markdown.slice(0, m.index).split('\n').length })
  return out
}

/** the first column's `key`s and the second column of a table that follows `heading` */
function tableAfter (markdown: string, heading: string): Array<[string, string]> {
  const start = markdown.indexOf(heading)
  assert.ok(start >= 0, `a table after "${heading}"`)
  const rows: Array<[string, string]> = []
  for (const line of markdown.slice(start).split('\n').slice(1)) {
    if (rows.length > 0 && !line.startsWith('|')) break
    const m = /^\| `(\w+)` \| ([^|]+) \|/.exec(line)
    if (m !== null) rows.push([m[1], m[2].trim()])
  }
  return rows
}

/** the keys the parser knows, from its own unknown-field error */
function knownKeys (value: unknown, field: string): string[] {
  try {
    validateManifest(value, 'x.yaml')
  } catch (err) {
    const m = new RegExp(`${field.replace('.', '\\.')}: unknown field \\(expected one of ([^)]+)\\)`).exec((err as Error).message)
    if (m !== null) return m[1].split(', ').sort()
  }
  throw new Error(`no unknown-field error for ${field}`)
}

describe('docs: the reference pages are true', function () {
  this.timeout(120_000)
  const manifestDoc = read('docs/manifest.md')
  const cellsDoc = read('docs/cells.md')

  it('every YAML example of docs/manifest.md parses, or fails with the error it states', () => {
    const yaml = blocks(manifestDoc).filter(b => b.lang === 'yaml')
    assert.ok(yaml.length >= 5)
    for (const b of yaml) {
      const expected = /^# error: (.+)$/m.exec(b.text)?.[1]
      if (expected === undefined) {
        const manifest = parseManifest(b.text, `docs/manifest.md:${b.line}`)
        assert.ok(Object.keys(manifest.cells).length > 0)
      } else {
        assert.throws(() => parseManifest(b.text, 'app.yaml'), (err: Error) => err.message.startsWith(`app.yaml: ${expected}`), `docs/manifest.md:${b.line}: ${expected}`)
      }
    }
  })

  it('the key tables list exactly the keys the parser accepts, with its defaults; the first example uses every key', () => {
    const top = tableAfter(manifestDoc, 'Top level:')
    assert.deepEqual(top.map(r => r[0]).sort(), knownKeys({ app: 'a', cells: { c: { code: './c.js' } }, zzz: 1 }, 'zzz'))
    const cell = tableAfter(manifestDoc, 'Each cell, `cells.NAME`:')
    assert.deepEqual(cell.map(r => r[0]).sort(), knownKeys({ app: 'a', cells: { c: { code: './c.js', zzz: 1 } } }, 'cells.c.zzz'))
    const defaults = new Map(cell)
    assert.equal(defaults.get('replicas'), `\`${cellDefaults.replicas}\``)
    assert.equal(defaults.get('clones'), `\`${cellDefaults.clones}\``)
    assert.equal(defaults.get('memory'), `\`${formatSize(cellDefaults.memory)}\``)
    assert.equal(defaults.get('timeout'), `\`${formatDuration(cellDefaults.timeout)}\``)
    assert.equal(defaults.get('mailbox'), `\`${cellDefaults.mailbox}\``)
    const full = blocks(manifestDoc).find(b => b.lang === 'yaml')
    for (const [key] of [...top, ...cell]) assert.match(full?.text ?? '', new RegExp(`^\\s*${key}:`, 'm'), `the full example uses ${key}`)
  })

  it('every js/ts example of docs/cells.md bundles and loads as a cell; the ts ones type-check against stem/cell', async () => {
    const code = blocks(cellsDoc).filter(b => b.lang === 'js' || b.lang === 'ts')
    assert.ok(code.some(b => b.lang === 'ts') && code.some(b => b.lang === 'js'))
    // inside the repository, so `stem/cell` resolves to this package's own types
    const dir = mkdtempSync(join(root, 'docs', '.check-'))
    try {
      const files = code.map((b, i) => {
        const file = join(dir, `example${i}.${b.lang}`)
        writeFileSync(file, b.text)
        return file
      })
      for (const [i, file] of files.entries()) {
        const { methods } = await classMethods(await bundleCode(file), { memory: 32 * 1024 * 1024, timeout: 1000 })
        assert.ok(methods.length > 0, `docs/cells.md:${code[i].line}: a class with methods`)
      }
      writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ extends: '../../examples/tsconfig.json', include: ['*.ts'] }))
      const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(dir, 'tsconfig.json')], { encoding: 'utf8' })
      assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('the README links to the docs, not to a file outside the repository', () => {
    const readme = read('README.md')
    assert.match(readme, /\(docs\/manifest\.md\)/)
    assert.match(readme, /\(docs\/cells\.md\)/)
    assert.doesNotMatch(readme, /\.\.\/shared/)
  })
})
