// Conversions between the raft data types (src/raft/types.ts) and their protobuf form
// (src/wire/proto/raft.proto), shared by the write-ahead log and the transport.
import * as pb from '../../wire/proto/raft.js'
import { EntryType } from '../types.js'
import type { ConfState, Entry, HardState, Snapshot } from '../types.js'

type Bytes = Uint8Array<ArrayBuffer>

export function entryToProto (e: Entry): pb.Entry {
  return { term: e.term, index: e.index, type: e.type, data: e.data as Bytes }
}

/** Throws a one-line error for an entry type this version does not know. */
export function entryFromProto (e: pb.Entry): Entry {
  if (EntryType[e.type] === undefined) throw new Error(`unknown raft entry type ${e.type}`)
  return { term: e.term, index: e.index, type: e.type as EntryType, data: e.data }
}

export function confToProto (c: ConfState): pb.ConfState {
  return { voters: [...c.voters], learners: [...c.learners] }
}

export function confFromProto (c: pb.ConfState | undefined): ConfState {
  return { voters: c?.voters ?? [], learners: c?.learners ?? [] }
}

export function hardStateToProto (hs: HardState): pb.HardState {
  return { term: hs.term, vote: hs.vote, commit: hs.commit }
}

export function hardStateFromProto (hs: pb.HardState | undefined): HardState {
  return { term: hs?.term ?? 0, vote: hs?.vote ?? '', commit: hs?.commit ?? 0 }
}

export function snapshotToProto (s: Snapshot): pb.Snapshot {
  return {
    metadata: { index: s.metadata.index, term: s.metadata.term, conf: confToProto(s.metadata.conf) },
    data: s.data as Bytes
  }
}

export function snapshotFromProto (s: pb.Snapshot): Snapshot {
  return {
    metadata: { index: s.metadata?.index ?? 0, term: s.metadata?.term ?? 0, conf: confFromProto(s.metadata?.conf) },
    data: s.data
  }
}

export function emptySnapshot (): Snapshot {
  return { metadata: { index: 0, term: 0, conf: { voters: [], learners: [] } }, data: new Uint8Array(0) }
}
