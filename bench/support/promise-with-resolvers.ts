// Preloaded (`--import`) by bench/runtime.ts into the older system Node only: Node 20 lacks
// Promise.withResolvers (Node 22+), which libp2p and Stem call. With it, the parts that load
// no Node 24 native module (libp2p, Raft) run on Node 20 for the comparison.
const P = Promise as unknown as { withResolvers?: () => { promise: Promise<unknown>, resolve: (v: unknown) => void, reject: (e: unknown) => void } }
if (typeof P.withResolvers !== 'function') {
  P.withResolvers = () => {
    let resolve!: (v: unknown) => void
    let reject!: (e: unknown) => void
    const promise = new Promise((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}
export {}
