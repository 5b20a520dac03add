// The command table. Each command lives in its own file and registers itself here.
// Every file here loads on every `stem …` call: import the node, esbuild or key code inside
// an action (`await import(…)`), not at the top (test/cli/startup.test.ts checks API-only commands).
import type { Command } from 'commander'
import { registerStart } from './start.js'
import { registerInvite } from './invite.js'
import { registerContribute } from './contribute.js'
import { registerPeers } from './peers.js'
import { registerPublish } from './publish.js'
import { registerApps } from './apps.js'
import { registerCall } from './call.js'
import { registerScale } from './scale.js'
import { registerDemo } from './demo.js'
import { registerService } from './service.js'
import { registerLogs } from './logs.js'
import { registerOwner } from './owner.js'
import { registerNew } from './new.js'
import { registerDev } from './dev.js'
import { registerStream } from './stream.js'

export const commands: Array<(program: Command) => void> = [
  registerStart,
  registerInvite,
  registerContribute,
  registerPeers,
  registerPublish,
  registerApps,
  registerCall,
  registerScale,
  registerDemo,
  registerService,
  registerLogs,
  registerOwner,
  registerNew,
  registerDev,
  registerStream
]
