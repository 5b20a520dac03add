// Upgrades one group's raft log directory from WAL format 1 (records without a header
// checksum, Stem before data format 2) to today's framing, file by file and atomically.
// A file that already reads cleanly in today's framing is left alone, so an upgrade cut
// short by a crash can simply run again. A file with bytes that did not reframe (a torn
// tail, or damage) keeps its original beside it as `<name>.format1`.
import { copyFile, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { writeFileAtomic } from '../../util/atomic-file.js'
import { reframeLegacyRecords, scanRecords } from './wal-record.js'

const LOG_FILE = /^(wal-[0-9a-f]{16}\.log|snapshot)$/

export interface WalUpgradeReport {
  /** files rewritten in today's framing */
  upgraded: string[]
  /** files whose tail did not reframe, with the bytes left out (the original is kept as .format1) */
  truncated: Array<{ file: string, droppedBytes: number }>
}

export async function upgradeLegacyWal (dir: string): Promise<WalUpgradeReport> {
  const report: WalUpgradeReport = { upgraded: [], truncated: [] }
  for (const name of (await readdir(dir)).filter(n => LOG_FILE.test(n)).sort()) {
    const path = join(dir, name)
    const buf = await readFile(path)
    if (buf.length === 0) continue
    const current = scanRecords(buf)
    if (current.damage == null && current.records.length > 0) continue
    const legacy = reframeLegacyRecords(buf)
    if (legacy.droppedBytes > 0) {
      await copyFile(path, `${path}.format1`)
      report.truncated.push({ file: path, droppedBytes: legacy.droppedBytes })
    }
    await writeFileAtomic(path, legacy.bytes)
    report.upgraded.push(path)
  }
  return report
}
