// The files `stem new NAME [--ts]` writes: a manifest, one cell with two routes and a
// test that asks the cell through the SDK (`stem/sdk`) on a running node. Pure: name in,
// relative paths and contents out (the command writes them).

export interface ScaffoldOptions {
  /** the app's name (also its one cell's); a valid manifest name */
  name: string
  /** the cell in TypeScript, typed with `stem/cell` */
  ts?: boolean
}

/** `my-app` → `MyApp` (names start with a letter, so this is an identifier) */
function className (name: string): string {
  return name.split('-').filter(p => p !== '').map(p => p[0].toUpperCase() + p.slice(1)).join('')
}

function manifest (name: string, code: string): string {
  return `# ${name}: one cell and its HTTP routes (every key: docs/manifest.md of Stem).
app: ${name}
cells:
  ${name}:
    code: ./${code}
    memory: 16MiB
routes:
  - GET /hello/:name -> ${name}.hello
  - GET /stats -> ${name}.stats
`
}

function cellJs (name: string): string {
  return `// A stem cell: the default export is a class, its methods are its messages and its own
// fields are its state (kept across calls, restarts and republishes). A route calls a
// method with one argument { params, query, body }. (The cell model: docs/cells.md of Stem.)
export default class ${className(name)} {
  greeted = 0

  hello ({ params }) {
    if (params.name.trim() === '') throw stem.error(400, 'name must not be empty')
    this.greeted += 1
    stem.log(\`hello \${params.name}\`)
    return { message: \`Hello, \${params.name}!\`, greeted: this.greeted }
  }

  stats () {
    return { greeted: this.greeted }
  }
}
`
}

function cellTs (name: string): string {
  return `// A stem cell: the default export is a class, its methods are its messages and its own
// fields are its state (kept across calls, restarts and republishes). A route calls a
// method with one argument { params, query, body }. (The cell model: docs/cells.md of Stem.)
// \`stem/cell\` types the route argument and the \`stem\` global.
import type { HttpRequest } from 'stem/cell'

export interface Greeting {
  message: string
  greeted: number
}

export default class ${className(name)} {
  greeted = 0

  hello ({ params }: HttpRequest<{ name: string }>): Greeting {
    if (params.name.trim() === '') throw stem.error(400, 'name must not be empty')
    this.greeted += 1
    stem.log(\`hello \${params.name}\`)
    return { message: \`Hello, \${params.name}!\`, greeted: this.greeted }
  }

  stats (): { greeted: number } {
    return { greeted: this.greeted }
  }
}
`
}

function test (name: string, ts: boolean): string {
  const cls = className(name)
  return `// Asks the ${name} cell on a running node through the SDK (stem/sdk): publish first
// (\`stem publish app.yaml\` or \`stem dev app.yaml\`), then \`npm test\`. STEM_DATA names the
// node's data dir (default ~/.stem): its api.json has the API's URL, api-token its token.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { connect } from 'stem/sdk'
${ts ? `import type ${cls} from '../${name}.js'\n` : ''}
const data = process.env.STEM_DATA ?? join(homedir(), '.stem')
const url = JSON.parse(readFileSync(join(data, 'api.json'), 'utf8')).url
const token = readFileSync(join(data, 'api-token'), 'utf8').trim()
const cell = connect({ url, token }).cell${ts ? `<${cls}>` : ''}('${name}/${name}')

test('hello greets and counts', async () => {
  const before = (await cell.stats()).greeted
  const answer = await cell.hello({ params: { name: 'Ada' }, query: {}, body: null })
  assert.equal(answer.message, 'Hello, Ada!')
  assert.equal(answer.greeted, before + 1)
})

test('an empty name is refused with 400', async () => {
  await assert.rejects(cell.hello({ params: { name: ' ' }, query: {}, body: null }), (err${ts ? ': unknown' : ''}) => (err${ts ? ' as { cellError?: { status?: number } }' : ''}).cellError?.status === 400)
})
`
}

function readme (name: string, ts: boolean): string {
  return `# ${name}

Made by \`stem new ${name}${ts ? ' --ts' : ''}\`: one cell (\`${name}.${ts ? 'ts' : 'js'}\`), its routes
(\`app.yaml\`) and a test that asks the cell through the SDK (\`test/\`).
\`node_modules/stem\` links to the Stem install that made it, so \`stem/sdk\`${ts ? ' and `stem/cell`' : ''}
resolve without \`npm install\`.

\`\`\`sh
stem dev app.yaml                       # publish, republish on every save (state kept), stream the logs
curl -s localhost:8080/${name}/hello/Ada  # {"message":"Hello, Ada!","greeted":1} (the node's gateway)
npm test                                # the SDK test, against the node of STEM_DATA (default ~/.stem)${ts ? '\nnpm run typecheck                       # tsc --noEmit: the cell against stem/cell' : ''}
\`\`\`
`
}

const packageJson = (name: string, ts: boolean): string => JSON.stringify({
  name,
  private: true,
  type: 'module',
  scripts: {
    test: `node --test test/*.test.${ts ? 'ts' : 'js'}`,
    // the TypeScript of the Stem install that made the app
    ...(ts ? { typecheck: 'node node_modules/stem/node_modules/typescript/bin/tsc --noEmit' } : {})
  }
}, null, 2) + '\n'

// the cell runs in an isolate, not Node: no Node types (`types: []`), only stem/cell's
const tsconfig = (name: string): string => JSON.stringify({
  compilerOptions: {
    target: 'ES2022',
    lib: ['ES2022'],
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: []
  },
  include: [`${name}.ts`]
}, null, 2) + '\n'

/** relative path → contents */
export function scaffoldFiles (options: ScaffoldOptions): Map<string, string> {
  const { name } = options
  const ts = options.ts === true
  const code = `${name}.${ts ? 'ts' : 'js'}`
  const files = new Map<string, string>([
    ['app.yaml', manifest(name, code)],
    [code, ts ? cellTs(name) : cellJs(name)],
    [`test/${name}.test.${ts ? 'ts' : 'js'}`, test(name, ts)],
    ['package.json', packageJson(name, ts)],
    ['README.md', readme(name, ts)],
    ['.gitignore', 'node_modules/\n']
  ])
  if (ts) files.set('tsconfig.json', tsconfig(name))
  return files
}
