// Debian's chromium for browser tests, driven by playwright-core. A test that needs it
// skips itself, with the reason printed, where it is not installed.
import { existsSync } from 'node:fs'
import type { Browser } from 'playwright-core'

const chromiumPath = '/usr/bin/chromium'

/** Launches headless chromium with the flags this closed network needs, or skips the suite. */
export async function launchChromiumOrSkip (context: Mocha.Context): Promise<Browser> {
  if (!existsSync(chromiumPath)) {
    console.log(`    (skipped: ${chromiumPath} is absent; apt-get install -y chromium)`)
    context.skip()
  }
  const { chromium } = await import('playwright-core')
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    // playwright gives it a new empty profile; no background networking on a closed network
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync']
  })
}
