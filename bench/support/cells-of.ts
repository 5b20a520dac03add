// A node's view of where an app's instances run, asked in process through its control API
// (a CLI process per poll costs seconds on a loaded machine).
import { createApiClient, type ApiClient } from '../../src/api/client.js'
import { readToken } from '../../src/node/data-dir.js'
import type { AppCellsListing } from '../../src/topology/app-table.js'
import { apiUrlOf } from '../../scripts/support/stem-process.js'

export type CellListing = AppCellsListing['cells'][number]

/** the control API of the node with this data dir */
export async function apiOf (node: { dataDir: string }): Promise<ApiClient> {
  return createApiClient(await apiUrlOf(node.dataDir), await readToken(node.dataDir))
}

/** the app's instances (address, node, state, clones) as the node sees them */
export async function cellsOf (node: { dataDir: string }, app: string): Promise<CellListing[]> {
  const listing = await (await apiOf(node)).get<AppCellsListing[]>(`/v1/cells?app=${app}`, AbortSignal.timeout(5000))
  return listing[0]?.cells ?? []
}
