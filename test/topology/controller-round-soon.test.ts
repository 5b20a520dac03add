// AppController.roundSoon: a node just elected leader runs a controller round at once, not
// at the next interval. Stand-in components: a round with no hosted group only looks at
// the live nodes and the groups, which is what the test counts.
import assert from 'node:assert/strict'
import { AppController } from '../../src/topology/app-controller.js'
import { createLogger } from '../../src/util/logger.js'
import { waitFor } from '../support/wait.js'

type Components = ConstructorParameters<typeof AppController>[0]

describe('topology/app-controller roundSoon', () => {
  it('runs a round before the next interval, once per request, and none after stop', async () => {
    let rounds = 0
    const components = {
      self: 'L',
      logger: createLogger('test'),
      nodes: () => { rounds++; return [] },
      groups: { all: () => [] }
    } as unknown as Components
    const controller = new AppController(components, { controlInterval: 3_600_000 })
    controller.roundSoon()
    assert.equal(rounds, 0, 'not started: no round')
    controller.start()
    try {
      controller.roundSoon()
      controller.roundSoon()
      // a round reads the live nodes twice (suspect, the shard rebalancer): one round, not two
      await waitFor(() => rounds > 0, { what: 'a round soon after the request' })
      await new Promise<void>(resolve => { setImmediate(resolve) })
      assert.equal(rounds, 2)
    } finally {
      controller.stop()
    }
    controller.roundSoon()
    assert.equal(rounds, 2, 'stopped: no round')
  })
})
