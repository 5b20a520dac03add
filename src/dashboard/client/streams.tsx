// The streams of the selected cell's app (GET /dashboard/streams?app=APP): per partition
// its next offset, and per consumer group the offset it acknowledged and its lag, as
// `stem stream` shows them; nothing when the app has no streams.
import type { DashboardStreamPartition } from '../types.js'
import { usePolledJson } from './polled.js'

export function StreamsPanel (props: { app: string, query: string }) {
  const sep = props.query === '' ? '?' : '&'
  const { value: partitions, error } = usePolledJson<DashboardStreamPartition[]>(`/dashboard/streams${props.query}${sep}app=${encodeURIComponent(props.app)}`)
  if (error === '' && (partitions === undefined || partitions.length === 0)) return null
  return (
    <div class="streams" data-streams={props.app}>
      <h3>Streams of <span class="mono">{props.app}</span></h3>
      {error !== '' ? <p class="empty">{error}</p> : (
        <table class="stream-lag">
          <thead><tr><th>stream</th><th class="num">partition</th><th class="num">next</th><th>group</th><th class="num">acked</th><th class="num">lag</th></tr></thead>
          <tbody>
            {(partitions ?? []).flatMap(p => {
              const key = `${p.stream}/${p.partition}`
              if (p.error !== undefined) return [<tr key={key} data-partition={key}><td class="mono">{p.stream}</td><td class="num">{p.partition}</td><td colSpan={4} class="muted">{p.error}</td></tr>]
              const groups = p.groups.length > 0 ? p.groups : [undefined]
              return groups.map(g => (
                <tr key={`${key}/${g?.group ?? '-'}`} data-partition={key} data-group={g?.group}>
                  <td class="mono">{p.stream}</td>
                  <td class="num">{p.partition}</td>
                  <td class="num">{p.next}</td>
                  <td class="mono">{g?.group ?? <span class="muted">no consumer</span>}</td>
                  <td class="num">{g?.acked ?? ''}</td>
                  <td class={g !== undefined && g.lag > 0 ? 'num lag behind' : 'num lag'}>{g?.lag ?? ''}</td>
                </tr>
              ))
            })}
          </tbody>
        </table>
      )}
    </div>
  )
}
