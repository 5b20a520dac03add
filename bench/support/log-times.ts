// Times of events in a stem node's log (stderr): every line starts with an ISO timestamp.

/** when the first log line containing `text` was written (ms since the epoch), undefined when none was */
export function firstLogTime (log: string, text: string): number | undefined {
  const line = log.split('\n').find(l => l.includes(text))
  if (line === undefined) return undefined
  const at = Date.parse(line.slice(0, line.indexOf(' ')))
  return Number.isNaN(at) ? undefined : at
}
