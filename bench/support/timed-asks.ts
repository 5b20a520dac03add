// Run inside a host namespace, where the node's control API listens on the namespace's own
// loopback: `node timed-asks.js DATA_DIR ADDRESS METHOD COUNT WARMUP` asks the cell COUNT
// times one after another through the node's API (POST /v1/call, after WARMUP untimed asks)
// and prints the figures (bench/support/stats.ts `Latency`) as one JSON line.
import { createHttpCaller } from '../../src/messaging/call-client.js'
import { newMessageId } from '../../src/messaging/sdk.js'
import { readToken } from '../../src/node/data-dir.js'
import { apiUrlOf } from '../../scripts/support/stem-process.js'
import { timeSequential } from './stats.js'

const [dataDir, address, method, count, warmup] = process.argv.slice(2)
const caller = createHttpCaller({ url: await apiUrlOf(dataDir), token: await readToken(dataDir) })
const latency = await timeSequential(async () => caller.ask(address, method, [], { messageId: newMessageId() }), Number(count), Number(warmup))
process.stdout.write(JSON.stringify(latency) + '\n')
