// The one logger of Stem. Quiet by default: `info` lines (one per notable event: joined,
// peer seen, peer lost) and warnings/errors go to stderr; `debug` lines only when verbose
// (`--verbose`, or DEBUG containing "stem"). stdout stays free for command output.
export interface Logger {
  info: (message: string) => void
  warn: (message: string) => void
  error: (message: string) => void
  debug: (message: string) => void
  /** logs `message` at warn level the first time `key` is seen, then stays silent for that key */
  warnOnce: (key: string, message: string) => void
}

export type LogLevel = 'silent' | 'info' | 'debug'

const state: { level: LogLevel, sink: (line: string) => void } = {
  level: /(^|,)\s*stem(\*|:|,|$)/.test(process.env.DEBUG ?? '') ? 'debug' : 'info',
  sink: line => { process.stderr.write(line + '\n') }
}

/** Process-wide: `--verbose` sets 'debug'; tests and benches may set 'silent'. */
export function setLogLevel (level: LogLevel): void {
  state.level = level
}

export function getLogLevel (): LogLevel {
  return state.level
}

/** Redirect log lines (tests capture them). Returns a function that restores the previous sink. */
export function setLogSink (sink: (line: string) => void): () => void {
  const previous = state.sink
  state.sink = sink
  return () => { state.sink = previous }
}

export function createLogger (component: string): Logger {
  const write = (tag: string, message: string): void => {
    state.sink(`${new Date().toISOString()} ${tag} ${component}: ${message}`)
  }
  const once = new Set<string>()
  return {
    info: message => { if (state.level !== 'silent') write('INFO ', message) },
    warn: message => { if (state.level !== 'silent') write('WARN ', message) },
    error: message => { if (state.level !== 'silent') write('ERROR', message) },
    debug: message => { if (state.level === 'debug') write('DEBUG', message) },
    warnOnce: (key, message) => {
      if (once.has(key)) return
      once.add(key)
      if (state.level !== 'silent') write('WARN ', message)
    }
  }
}
