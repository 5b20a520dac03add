// Whether a clone may take over from a running primary by promotion: the inventories of
// both nodes (the primary's asked first) show the clone holding at least the version the
// primary runs. A reply waits for one clone only, and a clone started lately may not have
// received any state yet: promoting it would start the instance from less than was
// acknowledged.
import type { Logger } from '../util/logger.js'
import type { CloneService } from './clones.js'
import { promotionIsDirect } from './recovery.js'
import type { Holder } from './recovery.js'

export async function cloneCaughtUp (clones: Pick<CloneService, 'inventoryOf'>, logger: Logger, app: string, address: string, primaryNode: string, cloneNode: string): Promise<boolean> {
  const signal = AbortSignal.timeout(5000)
  try {
    const primary = (await clones.inventoryOf(primaryNode, app, signal)).find(c => c.address === address && c.running)
    const clone = (await clones.inventoryOf(cloneNode, app, signal)).find(c => c.address === address && !c.running)
    if (primary === undefined || clone === undefined || clone.damaged === true) return false
    const ok = clone.version >= primary.version
    if (!ok) logger.debug(`app ${app}: the clone of ${address} on ${cloneNode} holds version ${clone.version}, the primary on ${primaryNode} runs ${primary.version}`)
    return ok
  } catch (err) {
    logger.debug(`app ${app}: cannot compare the copies of ${address}: ${(err as Error).message}`)
    return false
  }
}

/**
 * Whether a failover may promote the clone on `node` at once (its primary is gone): the
 * decision is recovery.ts promotionIsDirect, on the copy the clone's inventory reports.
 */
export async function mayPromoteDirectly (clones: Pick<CloneService, 'inventoryOf'>, logger: Logger, app: string, address: string, holders: Holder[], epoch: number, node: string): Promise<boolean> {
  let held: { version: number, epoch: number } | undefined
  try {
    const copy = (await clones.inventoryOf(node, app, AbortSignal.timeout(3000))).find(c => c.address === address && !c.running)
    if (copy !== undefined && copy.damaged !== true) held = { version: copy.version, epoch: copy.epoch }
  } catch (err) {
    logger.debug(`app ${app}: no inventory of ${address} from ${node}: ${(err as Error).message}`)
    return false
  }
  const direct = promotionIsDirect(holders, epoch, node, held)
  if (!direct) logger.info(`app ${app}: the clone of ${address} on ${node} may not hold the newest state (${held === undefined ? 'no state' : `epoch ${held.epoch}, version ${held.version}`}): recovery looks for the newest copy`)
  return direct
}
