// The raw request path check that runs before routing.
import assert from 'node:assert/strict'
import { checkRequestPath, pathOf } from '../../src/gateway/request-path.js'

describe('gateway/request-path', () => {
  it('accepts ordinary paths, trailing slashes and harmless encodings', () => {
    for (const p of ['/', '/shop', '/shop/', '/shop/items/a%20b', '/shop/items/caf%C3%A9', '/shop/v1.0/..x', '/shop/...']) {
      assert.equal(checkRequestPath(p), undefined, p)
    }
  })

  it('refuses dot segments, double slashes, encoded separators, control characters and bad encodings', () => {
    const cases: Array<[string, RegExp]> = [
      ['/shop/../x', /dot segment/],
      ['/shop/%2e%2E/x', /dot segment/],
      ['/shop/%2e', /dot segment/],
      ['/./shop', /dot segment/],
      ['//shop', /double slash/],
      ['/shop//x', /double slash/],
      ['/shop/a%2Fb', /encoded separator/],
      ['/shop/a%5Cb', /encoded separator/],
      ['/shop\\x', /backslash/],
      ['/shop/a%00', /control/],
      ['/shop/a%0d%0a', /control/],
      ['/shop/%zz', /percent-encoding/],
      ['/shop/%E0%A4%A', /percent-encoding/],
      ['shop', /must start with/],
      ['http://evil/shop', /must start with/],
      ['*', /must start with/]
    ]
    for (const [p, reason] of cases) assert.match(checkRequestPath(p) ?? '', reason, p)
  })

  it('takes the path out of a request target', () => {
    assert.equal(pathOf('/a/b?x=1&y=/..'), '/a/b')
    assert.equal(pathOf('/a#frag?x'), '/a')
    assert.equal(pathOf('/a'), '/a')
  })
})
