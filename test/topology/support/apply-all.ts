// Runs commands through the app state machine in order, as a group's members apply its log.
import { applyCommand } from '../../../src/topology/app-state.js'
import type { AppCommand, AppState, ApplyResult } from '../../../src/topology/app-state.js'

export function applyAll (commands: AppCommand[], from?: AppState): { state: AppState | undefined, results: ApplyResult[] } {
  let state = from
  const results: ApplyResult[] = []
  for (const cmd of commands) {
    const applied = applyCommand(state, cmd)
    state = applied.state
    results.push(applied.result)
  }
  return { state, results }
}
