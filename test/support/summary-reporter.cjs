'use strict'
// The spec reporter, plus the closing line the SPEC requires: `N passed, N failed`.
const Mocha = require('mocha')
const { EVENT_RUN_END } = Mocha.Runner.constants

class SummaryReporter extends Mocha.reporters.Spec {
  constructor (runner, options) {
    super(runner, options)
    runner.once(EVENT_RUN_END, () => {
      const { passes, failures, pending } = runner.stats
      const skipped = pending > 0 ? `, ${pending} skipped` : ''
      // after the spec reporter's own epilogue, which is also bound to EVENT_RUN_END
      process.nextTick(() => { process.stdout.write(`${passes} passed, ${failures} failed${skipped}\n`) })
    })
  }
}

module.exports = SummaryReporter
