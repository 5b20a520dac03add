// What a cell's copies must run: its bundle and limits. A change of any of these rolls
// every instance of the cell out again (reconcile.ts), and `stem publish` waits until each
// instance runs the revision it published.
import type { CellSpec } from './manifest.js'

export type RevisionFields = Pick<CellSpec, 'code' | 'bundle' | 'memory' | 'timeout' | 'mailbox'>

export function cellRevision (spec: Pick<CellSpec, 'bundle' | 'memory' | 'timeout' | 'mailbox'>): string {
  return `${spec.bundle ?? ''}:${spec.memory}:${spec.timeout}:${spec.mailbox}`
}

/** the fields of a cell spec that make up its revision (plus the code path it was built from) */
export function revisionFields (spec: CellSpec): RevisionFields {
  return { code: spec.code, bundle: spec.bundle, memory: spec.memory, timeout: spec.timeout, mailbox: spec.mailbox }
}
