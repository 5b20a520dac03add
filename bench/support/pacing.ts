// How the stream benches send: producers one call after another, or a steady pacer.
import { setTimeout as delay } from 'node:timers/promises'

/** `records` spread over `producers`, each waiting for its previous one; records/s */
export async function produce (producers: number, records: number, send: (p: number, i: number) => Promise<unknown>): Promise<number> {
  const started = performance.now()
  await Promise.all(Array.from({ length: producers }, async (_, p) => {
    for (let i = p; i < records; i += producers) await send(p, i)
  }))
  return records / ((performance.now() - started) / 1000)
}

/**
 * `count` calls started at `perSecond`, each at its slot whether or not the earlier ones
 * answered (a pacer that waited would hide queueing); resolves with every call's result.
 */
export async function paced<T> (perSecond: number, count: number, send: (i: number) => Promise<T>): Promise<T[]> {
  const started = performance.now()
  const calls: Array<Promise<T>> = []
  for (let i = 0; i < count; i++) {
    const wait = started + i * 1000 / perSecond - performance.now()
    if (wait > 0) await delay(wait)
    calls.push(send(i))
  }
  return await Promise.all(calls)
}

/** `send` started every `ms` until stopped, its failures ignored (failover probes) */
export function every (ms: number, send: () => Promise<unknown>): { stop: () => Promise<void> } {
  const calls: Array<Promise<unknown>> = []
  const timer = setInterval(() => { calls.push(send().catch(() => undefined)) }, ms)
  return { stop: async () => { clearInterval(timer); await Promise.all(calls) } }
}
