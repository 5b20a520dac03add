import assert from 'node:assert/strict'

describe('shim', () => {
  it('provides Promise.withResolvers before any test runs', async () => {
    const { promise, resolve } = Promise.withResolvers<number>()
    resolve(7)
    assert.equal(await promise, 7)
  })
})
