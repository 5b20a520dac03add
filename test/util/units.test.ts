import assert from 'node:assert/strict'
import { formatDuration, formatSize, parseDuration, parseSize } from '../../src/util/units.js'

describe('util/units', () => {
  it('parses binary sizes', () => {
    assert.equal(parseSize('32MiB'), 32 * 2 ** 20)
    assert.equal(parseSize('1GiB'), 2 ** 30)
    assert.equal(parseSize('2GiB'), 2 ** 31)
    assert.equal(parseSize('512KiB'), 512 * 1024)
    assert.equal(parseSize('1.5KiB'), 1536)
    assert.equal(parseSize('7B'), 7)
    assert.equal(parseSize('1TiB'), 2 ** 40)
  })

  it('refuses sizes it cannot read, with a one-line hint', () => {
    for (const bad of ['32 MB', '32', '', 'MiB', '-1MiB', '1.MiB', '1e3MiB', '32mib', '32Mb', '0x10MiB', ' 32MiB']) {
      assert.throws(() => parseSize(bad), (err: Error) => err.message === `${JSON.stringify(bad)} is not a size (use e.g. 32MiB)`, bad)
    }
    assert.throws(() => parseSize(32 as unknown as string), /32 is not a size/)
    assert.throws(() => parseSize('99999999999TiB'), /too large/)
  })

  it('refuses decimal units, naming the binary unit to use', () => {
    for (const [bad, binary] of [['2GB', '2GiB'], ['512KB', '512KiB'], ['512kB', '512KiB'], ['1.5MB', '1.5MiB'], ['1TB', '1TiB']]) {
      assert.throws(() => parseSize(bad), (err: Error) => err.message === `"${bad}" is in decimal units: use binary units (MiB, GiB), e.g. ${binary}`, bad)
    }
  })

  it('parses durations to milliseconds', () => {
    assert.equal(parseDuration('500ms'), 500)
    assert.equal(parseDuration('2s'), 2000)
    assert.equal(parseDuration('1m'), 60_000)
    assert.equal(parseDuration('1.5s'), 1500)
    assert.equal(parseDuration('2h'), 7_200_000)
  })

  it('refuses durations it cannot read', () => {
    for (const bad of ['500', '2 s', 's', '1d', '-1s', '1S', '']) {
      assert.throws(() => parseDuration(bad), /is not a duration \(use e\.g\. 500ms, 2s, 1m\)/, bad)
    }
  })

  it('formats exactly and round-trips', () => {
    assert.equal(formatSize(32 * 2 ** 20), '32MiB')
    assert.equal(formatSize(1500), '1500B')
    assert.equal(formatSize(2 ** 31), '2GiB')
    assert.equal(formatDuration(60_000), '1m')
    assert.equal(formatDuration(1500), '1500ms')
    for (const n of [1, 1024, 3 * 2 ** 30, 123456]) assert.equal(parseSize(formatSize(n)), n)
    for (const n of [1, 1000, 90_000, 3_600_000]) assert.equal(parseDuration(formatDuration(n)), n)
  })
})
