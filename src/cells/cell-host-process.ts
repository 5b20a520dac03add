// Node side of one cell host: the child process holding one app's isolates (SPEC §4).
// Spawns it, batches messages to it over its link (host/link.ts: a socket pair carrying
// length-prefixed frames, one write per batch), watches its heartbeat and RSS, and kills
// it when it stops answering, grows past its memory limit or sends a bad frame.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import type { Socket } from 'node:net'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Batcher } from './host/batcher.js'
import { encodeFrames, FrameDecoder, LinkError, maxFrameBytes } from './host/link.js'
import { fromHostError } from './host/protocol-check.js'
import type { FromHost, ToHost } from './host/protocol.js'
import type { RuntimeBounds } from './limits.js'
import { NODE_FLAGS } from '../util/node-flags.js'
import { COMPILE_CACHE_DIR } from '../util/compile-cache.js'

const HOST_ENTRY = fileURLToPath(new URL('./host/main.js', import.meta.url))
/**
 * Node flags of every cell host: the node's (util/node-flags.ts), and --expose-gc, for the
 * host collects the texts that come out of isolates itself (host/external-strings.ts); no
 * cell reaches the host's globals. (Node 24's V8 dropped --no-expose-wasm; the isolate
 * bootstrap deletes WebAssembly from every cell's global.) The cells' own heaps are their
 * isolates'.
 */
export const CELL_HOST_FLAGS = [...NODE_FLAGS, '--expose-gc']
/** the link's fd in the host (after stdin, stdout, stderr) */
const LINK_FD = 3

export interface CellHostProcessInit {
  app: string
  /** the host's entry script (default: host/main.js) */
  entry?: string
  bounds: RuntimeBounds
  /** see ToHost 'init' */
  localAsks: boolean
  /** ms between heartbeats */
  heartbeatInterval: number
  /** ms without an answer after which the host is killed (grows with the longest cell timeout) */
  heartbeatTimeout: () => number
  /** current RSS limit of this host, bytes */
  rssLimit: () => number
  onMessage: (message: FromHost) => void
  /** the process ended (or was killed); `reason` is one line */
  onExit: (reason: string) => void
  /** what the host process wrote to stderr (V8's fatal errors land here) */
  onStderr: (text: string) => void
}

/** stderr kept to explain a crash */
const STDERR_TAIL = 4096

const PAGE_SIZE = 4096
/** a check this much later than due means this process did not run meanwhile (at least 3 heartbeat intervals) */
const FROZEN_MIN_MS = 1000

export class CellHostProcess {
  readonly child: ChildProcess
  private readonly link: Socket
  private readonly frameLimit: number
  private readonly outbox: Batcher<ToHost>
  private readyToSend = false
  private early: ToHost[] = []
  private stderrTail = ''
  private lastPong = Date.now()
  private lastCheck = Date.now()
  private pingSeq = 0
  private readonly heartbeat: NodeJS.Timeout
  private exited = false
  private killReason: string | undefined
  rss = 0

  constructor (private readonly init: CellHostProcessInit) {
    this.frameLimit = maxFrameBytes(init.bounds.maxMessageBytes)
    this.child = spawn(process.execPath, [...CELL_HOST_FLAGS, init.entry ?? HOST_ENTRY, String(this.frameLimit)], {
      stdio: ['ignore', 'inherit', 'pipe', 'pipe'],
      // the node's compile cache: a new host (a failover's, a restart's) loads compiled code
      env: { ...process.env, NODE_COMPILE_CACHE: COMPILE_CACHE_DIR }
    })
    this.child.stderr?.setEncoding('utf8')
    this.child.stderr?.on('data', (text: string) => {
      this.stderrTail = (this.stderrTail + text).slice(-STDERR_TAIL)
      init.onStderr(text)
    })
    this.outbox = new Batcher<ToHost>(batch => {
      // until the host says it is ready, hold everything (it may not listen yet)
      if (!this.readyToSend) { this.early.push(...batch); return }
      this.transmit(batch)
    })
    this.link = this.child.stdio[LINK_FD] as Socket
    const decoder = new FrameDecoder<FromHost>(this.frameLimit, batch => { this.receive(batch) })
    this.link.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk)
      } catch (err) {
        this.badLink(err)
      }
    })
    this.link.on('end', () => {
      try {
        decoder.end()
      } catch (err) {
        // a host that died while writing is reported by its exit, not as a cut frame
        if (this.child.exitCode === null && this.child.signalCode === null) this.badLink(err)
      }
    })
    // a broken link: the host is dying (its exit reports why), or it hangs and fails its heartbeat
    this.link.on('error', () => {})
    this.child.on('error', err => { this.kill(`cell host process error: ${err.message}`) })
    // 'close', not 'exit': stderr is fully read by then (it may explain the crash)
    this.child.on('close', (code, signal) => {
      this.exited = true
      clearInterval(this.heartbeat)
      let how = this.killReason ?? (signal != null ? `was killed by ${signal}` : `exited with code ${String(code)}`)
      if (this.killReason === undefined && /heap out of memory|is_heap_oom = 1|Fatal JavaScript out of memory/i.test(this.stderrTail)) how += ' (V8: out of memory)'
      init.onExit(how)
    })
    this.heartbeat = setInterval(() => { this.check() }, init.heartbeatInterval)
    this.heartbeat.unref()
    this.outbox.push({ t: 'init', app: init.app, bounds: init.bounds, localAsks: init.localAsks })
  }

  get pid (): number | undefined {
    return this.child.pid
  }

  get alive (): boolean {
    return !this.exited
  }

  send (message: ToHost): void {
    if (this.exited) return
    this.outbox.push(message)
  }

  private transmit (batch: ToHost[]): void {
    if (this.link.destroyed || this.exited) return
    let frames: Buffer[]
    try {
      frames = encodeFrames(batch, this.frameLimit)
    } catch (err) {
      // cannot happen within the runtime's bounds (maxFrameBytes); the host cannot go on without it
      this.kill(`could not be sent a message: ${(err as Error).message}`)
      return
    }
    for (const frame of frames) this.link.write(frame)
  }

  /** A frame that cannot be read: the link's framing is lost, so the host goes (the runtime restarts it). */
  private badLink (err: unknown): void {
    if (!(err instanceof LinkError)) throw err
    this.link.destroy()
    this.kill(`broke its link: ${err.message}`)
  }

  private receive (batch: FromHost[]): void {
    if (this.exited || this.killReason !== undefined) return
    for (const message of batch) {
      const wrong = fromHostError(message)
      if (wrong !== undefined) { this.badLink(new LinkError(wrong)); return }
      if (message.t === 'ready') {
        this.readyToSend = true
        this.lastPong = Date.now()
        if (this.early.length > 0) this.transmit(this.early.splice(0))
        continue
      }
      if (message.t === 'pong') {
        this.lastPong = Date.now()
        this.rss = message.rss
        continue
      }
      this.init.onMessage(message)
    }
  }

  private check (): void {
    if (this.exited) return
    // this node itself was frozen (SIGSTOP, a suspended VM) or blocked since the last check:
    // the silence is its own, not the host's. Killing the host on waking restarted its cells
    // from their last saved state, and a deposed primary restarted so answered from an old
    // state before anything fenced it (chaos seed 7). The host gets a fresh interval to answer.
    const now = Date.now()
    const frozen = now - this.lastCheck > Math.max(3 * this.init.heartbeatInterval, FROZEN_MIN_MS)
    this.lastCheck = now
    if (frozen) {
      this.lastPong = now
      this.send({ t: 'ping', n: ++this.pingSeq })
      return
    }
    if (!this.readyToSend) {
      if (Date.now() - this.lastPong > this.init.heartbeatTimeout() * 3) this.kill('did not start')
      return
    }
    if (Date.now() - this.lastPong > this.init.heartbeatTimeout()) {
      this.kill(`stopped answering its heartbeat for ${Date.now() - this.lastPong} ms`)
      return
    }
    const rss = this.readRss()
    const limit = this.init.rssLimit()
    if (rss > limit) {
      this.kill(`passed its memory limit: RSS ${Math.round(rss / 1048576)} MiB > ${Math.round(limit / 1048576)} MiB`)
      return
    }
    this.send({ t: 'ping', n: ++this.pingSeq })
  }

  /** RSS from /proc (cannot be faked or delayed by the host), else its last heartbeat figure. */
  private readRss (): number {
    try {
      const statm = readFileSync(`/proc/${String(this.child.pid)}/statm`, 'utf8')
      this.rss = Number(statm.split(' ')[1]) * PAGE_SIZE
    } catch {}
    return this.rss
  }

  /** SIGKILL the host; onExit reports `reason`. */
  kill (reason: string): void {
    if (this.exited) return
    this.killReason ??= reason
    this.child.kill('SIGKILL')
  }
}
