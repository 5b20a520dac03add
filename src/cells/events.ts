// Typed events of the cell runtime: supervision (for the node to report and the
// dashboard to show), snapshots (for warm clones), and cell logs.

export type CellStatus = 'stem' | 'transformed' | 'reverted' | 'failed'

export interface CellEventDetail {
  address: string
  /** bundle hash the cell runs (or ran) */
  hash?: string
  /** one line: why it crashed / failed */
  reason?: string
}

export interface CellSnapshotDetail {
  address: string
  hash: string
  /** JSON text of the cell's own fields after the message, and its pending reminders (field `stem:reminders`, see reminders.ts) */
  state: string
  /**
   * Increases with every change. Changes made while messages are batched arrive as the
   * latest state only, so versions may skip numbers; a state always reaches the node
   * before the replies to the messages that produced it.
   */
  version: number
  /** the reply window (reply-window.ts) with the results of the asks that produced it: it travels with the state */
  replies: string
}

export interface CellErrorDetail {
  address: string
  method: string
  message: string
  /** `at …` lines in the original sources */
  stack?: string
}

export interface CellHostEventDetail {
  app: string
  pid?: number
  reason: string
}

export interface CellRuntimeEvents {
  /** transformed and ready */
  'cell:started': CustomEvent<CellEventDetail>
  /** a limit was exceeded or its host died; its message got an error */
  'cell:crashed': CustomEvent<CellEventDetail>
  /** running again from its last state */
  'cell:restarted': CustomEvent<CellEventDetail>
  /** crashed too often: not restarted again until transformed anew */
  'cell:failed': CustomEvent<CellEventDetail>
  'cell:reverted': CustomEvent<CellEventDetail>
  /** the state changed (the hook for streaming state to warm clones) */
  'cell:snapshot': CustomEvent<CellSnapshotDetail>
  'cell:log': CustomEvent<{ address: string, text: string }>
  /** a message failed with an error its method threw (not one with an HTTP status below 500: an answer the cell chose) */
  'cell:error': CustomEvent<CellErrorDetail>
  /** a cell host died or was killed */
  'host:crashed': CustomEvent<CellHostEventDetail>
  'host:restarted': CustomEvent<CellHostEventDetail>
}
