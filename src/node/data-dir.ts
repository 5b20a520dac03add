// What a node keeps in its data dir (default ~/.stem):
//   identity.key  Ed25519 key (0600)            mesh.json   mesh name, key, bootstrap (0600)
//   api-token     control API bearer token (0600) api.json    URL of the running API
//   contribution.json  what `stem contribute` set   peers/      persistent peer store (LevelDB)
//   bundles/  code bundles held   groups/  app raft logs   cells/  cell states   clones/  held warm clones
//   stem-data.json  the dir's format: a dir from a newer Stem is refused
import { readFile, readdir, rm, access, constants } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import { mkdirDurable, nodeDirOps, writeFileAtomic } from '../util/atomic-file.js'
import { upgradeLegacyWal } from '../raft/storage/wal-upgrade.js'
import { MESH_KEY_LENGTH, meshNameProblem, type MeshConfig } from '../mesh/mesh-config.js'
import { resourcesProblem, type Resources } from '../mesh/resources.js'

export function defaultDataDir (): string {
  return resolve(process.env.STEM_DATA ?? join(homedir(), '.stem'))
}

export const dataFiles = (dir: string): { identity: string, owner: string, mesh: string, token: string, api: string, contribution: string, peers: string, bundles: string, groups: string, clones: string, cells: string, format: string } => ({
  identity: join(dir, 'identity.key'),
  /** the app owner key of this data dir's user (publish, scale, revert), separate from the node identity */
  owner: join(dir, 'owner.key'),
  /** bundles this node holds */
  bundles: join(dir, 'bundles'),
  /** the raft logs of the app groups this node is a member of */
  groups: join(dir, 'groups'),
  /** the warm clones this node holds for other nodes' instances (restored on restart) */
  clones: join(dir, 'clones'),
  /** the states of the primaries this node runs (restored on restart) */
  cells: join(dir, 'cells'),
  mesh: join(dir, 'mesh.json'),
  token: join(dir, 'api-token'),
  api: join(dir, 'api.json'),
  contribution: join(dir, 'contribution.json'),
  peers: join(dir, 'peers'),
  /** the data dir's format (DATA_FORMAT) */
  format: join(dir, 'stem-data.json')
})

/**
 * the layout of data dirs this version writes (stem-data.json); a newer one is refused.
 * 2: raft log records carry a header checksum (format 1 and unmarked dirs are upgraded).
 * 3: state files (cells/, clones/) carry the state's reply window; older ones load as they
 *    are, with an empty window, and get one on their next write (nothing to rewrite).
 * 4: an instance's copy is a base file and an append log beside it (topology/copy-log.ts);
 *    older files load as they are (nothing to rewrite). A Stem of format 3 would read the
 *    base alone, an older state: it refuses the dir instead.
 */
export const DATA_FORMAT = 4

/**
 * Checks the data dir's format marker (`stem-data.json`), writing it on first use: a dir
 * written by a newer Stem is refused with one line naming the file, before anything in it
 * is read or changed. A dir of an older format (or from before the marker) is upgraded
 * first: its app groups' raft logs are reframed (src/raft/storage/wal-upgrade.ts). The
 * marker is written last, so an upgrade cut short runs again. Returns one line per file
 * upgraded with bytes left out, for the node's log.
 */
export async function checkDataFormat (dir: string): Promise<string[]> {
  const files = dataFiles(dir)
  const raw = await readJson(files.format) as { format?: unknown } | undefined
  if (raw != null) {
    if (typeof raw !== 'object' || typeof raw.format !== 'number' || !Number.isSafeInteger(raw.format) || raw.format < 1) throw new Error(`${files.format} is corrupt (expected {"format": N})`)
    if (raw.format > DATA_FORMAT) throw new Error(`${files.format}: this data dir was written by a newer version of stem (format ${raw.format}; this one reads format ${DATA_FORMAT}): upgrade stem, or use another --data`)
    if (raw.format === DATA_FORMAT) return []
  }
  const lines: string[] = []
  // only logs written before format 2 are reframed (a format-2 log is never read as format 1)
  const groups = (raw?.format as number | undefined ?? 0) >= 2 ? [] : await readdir(files.groups, { withFileTypes: true }).catch(() => [])
  for (const group of groups.filter(g => g.isDirectory())) {
    const report = await upgradeLegacyWal(join(files.groups, group.name))
    for (const t of report.truncated) lines.push(`${t.file}: ${t.droppedBytes} bytes at its end did not upgrade to data format ${DATA_FORMAT} (a torn write, or damage); the original is kept as ${t.file}.format1`)
  }
  await writeFileAtomic(files.format, JSON.stringify({ format: DATA_FORMAT }) + '\n')
  return lines
}

/** Creates the dir (0700) if needed and checks it is writable; one-line error otherwise. */
export async function prepareDataDir (dir: string): Promise<void> {
  try {
    await mkdirDurable(dir, nodeDirOps(0o700))
    await access(dir, constants.W_OK)
    const probe = join(dir, `.probe-${randomBytes(4).toString('hex')}`)
    await writeFileAtomic(probe, '')
    await rm(probe)
  } catch (err) {
    throw new Error(`data dir ${dir} is not usable: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (choose another with --data DIR)`)
  }
}

async function readJson (path: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new Error(`cannot read ${path}: ${(err as Error).message}`)
  }
  try {
    return JSON.parse(text)
  } catch {
    throw new Error(`${path} is corrupt (not JSON)`)
  }
}

export interface StoredMesh extends MeshConfig {
  bootstrap: string[]
}

export async function readMeshConfig (dir: string): Promise<StoredMesh | undefined> {
  const path = dataFiles(dir).mesh
  const raw = await readJson(path) as { name?: unknown, key?: unknown, bootstrap?: unknown } | undefined
  if (raw == null) return undefined
  const key = typeof raw.key === 'string' && /^[0-9a-f]+$/.test(raw.key) ? new Uint8Array(Buffer.from(raw.key, 'hex')) : undefined
  if (typeof raw.name !== 'string' || meshNameProblem(raw.name) != null || key?.length !== MESH_KEY_LENGTH || !Array.isArray(raw.bootstrap) || !raw.bootstrap.every(b => typeof b === 'string')) {
    throw new Error(`${path} is corrupt (expected a mesh name, a 32-byte hex key and bootstrap addresses)`)
  }
  return { name: raw.name, key, bootstrap: raw.bootstrap as string[] }
}

export async function writeMeshConfig (dir: string, mesh: StoredMesh): Promise<void> {
  const json = JSON.stringify({ name: mesh.name, key: Buffer.from(mesh.key).toString('hex'), bootstrap: mesh.bootstrap }, null, 2)
  await writeFileAtomic(dataFiles(dir).mesh, json + '\n', { mode: 0o600 })
}

export async function readContribution (dir: string): Promise<Partial<Resources> | undefined> {
  const path = dataFiles(dir).contribution
  const raw = await readJson(path) as Resources | undefined
  if (raw == null) return undefined
  const problem = resourcesProblem({ cpu: raw.cpu, memory: raw.memory, cells: raw.cells })
  if (problem != null) throw new Error(`${path} is corrupt: ${problem}`)
  return raw
}

export async function writeContribution (dir: string, r: Resources): Promise<void> {
  await writeFileAtomic(dataFiles(dir).contribution, JSON.stringify({ cpu: r.cpu, memory: r.memory, cells: r.cells }) + '\n')
}

/** The control API token: created once (0600), then reused. */
export async function loadOrCreateToken (dir: string): Promise<string> {
  const path = dataFiles(dir).token
  try {
    const token = (await readFile(path, 'utf8')).trim()
    if (token.length < 32) throw new Error(`${path} is corrupt (too short)`)
    return token
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const token = randomBytes(32).toString('base64url')
  await writeFileAtomic(path, token + '\n', { mode: 0o600 })
  return token
}

export async function readToken (dir: string): Promise<string> {
  const path = dataFiles(dir).token
  try {
    return (await readFile(path, 'utf8')).trim()
  } catch (err) {
    throw new Error(`cannot read the API token ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (is --data right, and was the node started?)`)
  }
}

export interface ApiInfo { url: string, pid: number }

export async function writeApiInfo (dir: string, info: ApiInfo): Promise<void> {
  await writeFileAtomic(dataFiles(dir).api, JSON.stringify(info) + '\n')
}

export async function readApiInfo (dir: string): Promise<ApiInfo | undefined> {
  const raw = await readJson(dataFiles(dir).api) as ApiInfo | undefined
  return raw != null && typeof raw.url === 'string' ? raw : undefined
}

export async function removeApiInfo (dir: string): Promise<void> {
  await rm(dataFiles(dir).api, { force: true })
}
