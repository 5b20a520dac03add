import { describe, it } from 'mocha'
import assert from 'node:assert/strict'
import ivm from 'isolated-vm'
import { CodeCache } from '../../src/cells/host/sandbox.js'

describe('cells: compiled-code cache', () => {
  it('cells running the same bundle reuse its compiled code', () => {
    const cache = new CodeCache()
    const code = 'export default class C { x () { return 1 } }'
    const isolates = [new ivm.Isolate({ memoryLimit: 8 }), new ivm.Isolate({ memoryLimit: 8 })]
    try {
      const first = cache.compile(isolates[0], 'h', code, 'a.js') as ivm.Module & { cachedData?: unknown }
      assert.ok(first.cachedData !== undefined, 'first compile produces cached data')
      const second = cache.compile(isolates[1], 'h', code, 'b.js') as ivm.Module & { cachedDataRejected?: boolean }
      assert.equal(second.cachedDataRejected, false)
    } finally {
      for (const isolate of isolates) isolate.dispose()
    }
  })
})
