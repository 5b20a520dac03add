// Publish's route check: each route must target a public method of its cell's class, found
// by loading the bundle in a throwaway isolate (real isolated-vm).
import assert from 'node:assert/strict'
import { classMethods } from '../../src/cells/class-methods.js'
import { routeMethodProblems } from '../../src/topology/route-methods.js'
import type { Route } from '../../src/topology/manifest.js'

const LIMITS = { memory: 32 * 1024 * 1024, timeout: 100 }

describe('topology: routes checked against the methods of their cell class', () => {
  it('lists public methods only, the nearest definition deciding, without constructing the class', async () => {
    const code = `
      class Base { inherited () {} shadowed () {} toString () { return 'x' } }
      export default class Todos extends Base {
        constructor () { super(); throw new Error('never constructed') }
        add () {} list () {} _hidden () {} get size () { return 1 } get shadowed () { return 1 }
        static make () {}
      }
      stem.log('top-level code runs with a stem that does nothing')`
    assert.deepEqual(await classMethods(code, LIMITS), { name: 'class Todos', methods: ['add', 'inherited', 'list', 'toString'] })
  })

  it('refuses a module that does not load or exports no class, with a one-line reason', async () => {
    await assert.rejects(classMethods('export default 5', LIMITS), /^Error: cannot load the module: the module must export a class as default$/)
    await assert.rejects(classMethods('export default class {', LIMITS), /^Error: cannot load the module: Unexpected end of input/)
    await assert.rejects(classMethods('import fs from "fs"; export default class A {}', LIMITS), /cannot import 'fs'/)
    await assert.rejects(classMethods('for (;;) {} export default class A {}', LIMITS), /cannot load the module: Script execution timed out/)
  })

  it('names the route and the missing method, and passes routes whose methods exist', () => {
    const routes: Route[] = [
      { method: 'GET', path: '/todos', cell: 'todos', handler: 'list' },
      { method: 'GET', path: '/archive', cell: 'todos', handler: 'archive' },
      { method: 'POST', path: '/hidden', cell: 'todos', handler: '_hidden' }
    ]
    const classes = { todos: { name: 'class Todos', code: './todos.ts', methods: ['add', 'list'] } }
    assert.deepEqual(routeMethodProblems({ routes }, classes), [
      'routes[1] "GET /archive -> todos.archive": class Todos of todos (./todos.ts) has no public method "archive" (it has: add, list)',
      'routes[2] "POST /hidden -> todos._hidden": class Todos of todos (./todos.ts) has no public method "_hidden" (it has: add, list)'
    ])
    assert.deepEqual(routeMethodProblems({ routes: routes.slice(0, 1) }, classes), [])
  })
})
