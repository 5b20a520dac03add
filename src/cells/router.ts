// Where a cell's stem.ask / stem.tell to an address outside its own cell host goes.
// The runtime's default router serves the node's own cells; the messaging layer plugs in
// one that also reaches cells on other nodes through the mesh.

export interface RouteOptions {
  /** the asking cell's address */
  from: string
  /** ms since the epoch after which the ask is abandoned */
  deadline: number
  signal?: AbortSignal
}

export interface CellRouter {
  /** Resolves with the result as JSON text; rejects with a one-line error. */
  ask: (address: string, method: string, argsJson: string, options: RouteOptions) => Promise<string>
  /** Fire and forget; delivery failures are dropped (at most once). */
  tell: (address: string, method: string, argsJson: string, options: RouteOptions) => void
}
