// The command table. Each command lives in its own file and registers itself here;
// later layers add theirs (publish, apps, cells, call, scale, revert, demo) to this list.
import type { Command } from 'commander'
import { registerStart } from './start.js'
import { registerInvite } from './invite.js'
import { registerContribute } from './contribute.js'
import { registerPeers } from './peers.js'

export const commands: Array<(program: Command) => void> = [
  registerStart,
  registerInvite,
  registerContribute,
  registerPeers
]
