// The bounded JSON parser used at every JSON boundary: size and nesting depth before parsing.
import { describe, it } from 'mocha'
import assert from 'node:assert/strict'
import { jsonBoundsError, jsonDepth, parseBoundedJson, MAX_JSON_DEPTH } from '../../src/util/bounded-json.js'

describe('util: bounded JSON', () => {
  it('counts nesting without parsing, ignoring brackets inside strings and escaped quotes', () => {
    assert.equal(jsonDepth('1'), 0)
    assert.equal(jsonDepth('[[1],{"a":[2]}]'), 3)
    assert.equal(jsonDepth('["[[[[", "\\"[[[", {"k": "]]]"}]'), 2)
    assert.equal(jsonDepth('['.repeat(100_000), 10), 11, 'stops counting once past the limit')
  })

  it('refuses 100,000 and 5,000 levels with one line naming the limit, accepts the limit itself', () => {
    for (const depth of [100_000, 5_000, MAX_JSON_DEPTH + 1]) {
      assert.throws(() => parseBoundedJson('['.repeat(depth) + ']'.repeat(depth), 'body'), { message: `body is nested too deeply: more than ${MAX_JSON_DEPTH} levels` })
    }
    const deepest = '['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH)
    assert.ok(Array.isArray(parseBoundedJson(deepest, 'body')))
  })

  it('refuses oversized, malformed and truncated text with a clear error', () => {
    assert.equal(jsonBoundsError('"xxxx"', 'state', { maxBytes: 4 }), 'state is too large: 6 characters of JSON, limit 4')
    assert.throws(() => parseBoundedJson('{"a":', 'body'), /^Error: body is not valid JSON: /)
    assert.throws(() => parseBoundedJson('[1,]', 'body'), /body is not valid JSON/)
    assert.deepEqual(parseBoundedJson('{"a":[1,"]"]}', 'body', { maxBytes: 100, maxDepth: 2 }), { a: [1, ']'] })
    assert.throws(() => parseBoundedJson('{"a":[[1]]}', 'body', { maxDepth: 2 }), /nested too deeply: more than 2 levels/)
  })
})
