#!/usr/bin/env node
// Applies the small patches Stem carries to its libp2p dependencies until they land
// upstream (scripts/patches/README.md says what each fixes and holds the upstream diff).
// Runs as `postinstall`, so a fresh `npm ci` gets them. Idempotent: a patch already
// applied is left alone. Fails loudly (exit 1) when an upstream file changed shape: then
// the patch needs a look (merged upstream? moved?), not a silent skip.
// Plain JavaScript, no dependencies: it runs before `npm run build`, on any Node.
//   node scripts/patches/apply.mjs [--root DIR]   (DIR holds node_modules; default: the repo)
import { readFileSync, writeFileSync, existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Each edit: `from` must occur exactly once in the file, unless `to` already does. */
const patches = [
  {
    name: 'yamux-window-update-at-half',
    file: 'node_modules/@libp2p/yamux/dist/src/stream.js',
    edits: [{
      from: `        // determine the flags if any
        const flags = this.getSendFlags();
`,
      to: `        // determine the flags if any
        const flags = this.getSendFlags();
        // a window update only once half the receive window is consumed (as hashicorp/yamux
        // and rust-yamux do): one after every data frame doubles the frames of a request
        // and its response (patched by stem: scripts/patches/README.md)
        if (flags === 0 && this.recvWindow - this.recvWindowCapacity < this.recvWindow / 2) {
            return;
        }
`
    }]
  },
  {
    name: 'noise-one-buffer-per-frame',
    file: 'node_modules/@libp2p/noise/dist/src/utils.js',
    edits: [{
      from: `            output.append(uint16BEEncode(data.byteLength));
            output.append(data);
`,
      to: `            // length prefix and ciphertext (a list of parts when the plaintext was one) in one
            // buffer: one socket write per frame, not two or more
            // (patched by stem: scripts/patches/README.md)
            output.append(new Uint8ArrayList(uint16BEEncode(data.byteLength), data).subarray());
`
    }]
  },
  {
    name: 'webrtc-recipient-waits-for-connected',
    file: 'node_modules/@libp2p/webrtc/dist/src/private-to-private/util.js',
    edits: [{
      from: `            if (message == null) {
                // throw if we timed out
                options.signal?.throwIfAborted();
                break;
            }
`,
      to: `            if (message == null) {
                // throw if we timed out
                options.signal?.throwIfAborted();
                // the other side ends the stream once it is connected, and also when its dial
                // gave up: connected only once this side is too (else an inbound WebRTC
                // connection that never punched through counts as open and its streams hang)
                // (patched by stem: scripts/patches/README.md)
                if (pc.connectionState !== 'connected') {
                    await Promise.race([connectedPromise.promise, new Promise((_resolve, reject) => {
                            options.signal?.addEventListener('abort', () => { reject(options.signal.reason); }, { once: true });
                        })]);
                }
                break;
            }
`
    }, {
      from: `        if (options.signal?.aborted === true && pc.connectionState !== 'connected') {
            throw err;
        }
`,
      to: `        // not connected is a failure however it came (patched by stem: scripts/patches/README.md)
        if (pc.connectionState !== 'connected') {
            throw err;
        }
`
    }]
  }
]

const count = (text, part) => text.split(part).length - 1

/** Applies every patch under `root`; returns one line per patch; throws naming what changed shape. */
function applyPatches (root) {
  const lines = []
  for (const patch of patches) {
    const path = join(root, patch.file)
    if (!existsSync(path)) throw new Error(`patch ${patch.name}: ${patch.file} is missing (the package moved or changed its layout)`)
    let text = readFileSync(path, 'utf8')
    let applied = 0
    for (const edit of patch.edits) {
      if (count(text, edit.to) === 1) continue
      const found = count(text, edit.from)
      if (found !== 1) throw new Error(`patch ${patch.name}: ${patch.file} changed shape (the text to patch occurs ${found} times, expected once): check whether upstream fixed it, then update or drop the patch`)
      text = text.replace(edit.from, edit.to)
      applied++
    }
    if (applied > 0) writeFileSync(path, text)
    lines.push(`patch ${patch.name}: ${applied > 0 ? 'applied' : 'already applied'}`)
  }
  return lines
}

const at = process.argv.indexOf('--root')
const root = at > 0 ? process.argv[at + 1] : join(dirname(fileURLToPath(import.meta.url)), '..', '..')
try {
  for (const line of applyPatches(root)) console.log(line)
} catch (err) {
  console.error(`scripts/patches/apply.mjs: ${err.message}`)
  process.exit(1)
}
