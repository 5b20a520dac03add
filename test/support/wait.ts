// Tests wait for conditions with deadlines, never for fixed sleeps. The one waitFor lives
// with the scripts' support code (npm run chaos uses it too).
export { waitFor, type WaitOptions } from '../../scripts/support/wait.js'
