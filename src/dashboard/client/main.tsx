// The dashboard page: one EventSource on /dashboard/events keeps a ViewState current and
// Preact re-renders it; the browser reconnects by itself (the server sends `retry:`) and
// the first message of every connection is a full snapshot. Read-only: nothing here can
// change the node.
import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import type { DashboardSnapshot, MeshEvent, StreamMessages } from '../types.js'
import { shortId } from './format.js'
import { Legend, MeshGraph } from './graph.js'
import { AppsPanel, CellsPanel, EventsPanel } from './panels.js'
import { CellLogPanel } from './cell-logs.js'
import { StreamsPanel } from './streams.js'
import { applyEvent, applyPatch, applySnapshot, visibleNodes, type ViewState } from './store.js'
import './style.css'

const token = new URLSearchParams(location.search).get('token')
const query = token != null ? `?token=${encodeURIComponent(token)}` : ''

function useMesh (): ViewState {
  const [state, setState] = useState<ViewState>({ connection: 'connecting', ghosts: new Map() })
  useEffect(() => {
    const source = new EventSource(`/dashboard/events${query}`)
    const on = <K extends keyof StreamMessages>(name: K, apply: (s: ViewState, data: StreamMessages[K]) => ViewState): void => {
      source.addEventListener(name, (e: MessageEvent<string>) => {
        const data = JSON.parse(e.data) as StreamMessages[K]
        setState(s => ({ ...apply(s, data), connection: 'live' }))
      })
    }
    on('snapshot', (s, snap: DashboardSnapshot) => applySnapshot(s, snap, Date.now()))
    on('patch', (s, patch) => applyPatch(s, patch, Date.now()))
    on('event', (s, event: MeshEvent) => applyEvent(s, event))
    source.onerror = () => { setState(s => ({ ...s, connection: s.snap == null ? 'connecting' : 'reconnecting' })) }
    return () => { source.close() }
  }, [])
  return state
}

function App () {
  const state = useMesh()
  const [selected, setSelected] = useState<string | undefined>(undefined)
  const snap = state.snap
  if (snap == null) return <p class="boot">{state.connection === 'connecting' ? 'Connecting to the node…' : 'Reconnecting…'}</p>
  const nodes = visibleNodes(state)
  const live = snap.nodes.length
  return (
    <div class="page">
      <header>
        <div class="brand"><span class="logo">◉</span> Stem <span class="mesh">{snap.self.mesh}</span></div>
        <div class="summary">
          <span><b data-count="nodes">{live}</b> node{live === 1 ? '' : 's'}</span>
          <span><b data-count="apps">{snap.apps.length}</b> app{snap.apps.length === 1 ? '' : 's'}</span>
          <span><b data-count="cells">{snap.cells.length}</b> cell{snap.cells.length === 1 ? '' : 's'}</span>
        </div>
        <div class="who mono" title={snap.self.addrs.join('\n')}>{snap.self.name !== undefined ? `${snap.self.name} ` : 'node '}{shortId(snap.self.id)}</div>
        <div class={`conn conn-${state.connection}`}>{state.connection === 'live' ? 'live' : 'reconnecting…'}</div>
      </header>
      <main>
        <section class="card graph-card">
          <h2>Mesh</h2>
          <MeshGraph nodes={nodes} apps={snap.apps} cells={snap.cells} />
          <Legend />
        </section>
        <section class="card">
          <h2>Apps</h2>
          <AppsPanel apps={snap.apps} />
          <h2 class="later">Events</h2>
          <EventsPanel events={snap.events} />
        </section>
        <section class="card wide">
          <h2>Cells</h2>
          <CellsPanel cells={snap.cells} selected={selected} onSelect={setSelected} />
          {selected !== undefined ? <CellLogPanel address={selected} query={query} /> : null}
          {selected !== undefined ? <StreamsPanel app={selected.slice(0, selected.indexOf('/'))} query={query} /> : null}
        </section>
      </main>
    </div>
  )
}

const root = document.getElementById('root')
if (root != null) {
  root.textContent = ''
  render(<App />, root)
}
