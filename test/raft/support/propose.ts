// Raft may drop a proposal (no leader yet, or the leader changed before it committed: on
// a loaded machine, spurious elections happen). Clients retry, and so do the tests.
import { waitFor } from '../../support/wait.js'

/** Calls `propose` (errors ignored), then again every `retryMs` until `applied()` holds. */
export async function proposeUntilApplied (propose: () => void, applied: () => boolean, what: string, timeoutMs = 90_000, retryMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try { propose() } catch {}
    try {
      await waitFor(applied, { what, timeout: Math.min(retryMs, Math.max(0, deadline - Date.now())) })
      return
    } catch (err) {
      if (Date.now() >= deadline) throw err
    }
  }
}
