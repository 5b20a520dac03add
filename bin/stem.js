#!/usr/bin/env -S node --no-node-snapshot
// The `stem` command. The shim comes first so libp2p sees Promise.withResolvers on Node 20.
import '../dist/src/shim.js'
import { main } from '../dist/src/cli/main.js'

await main(process.argv.slice(2))
