// Tests are compiled by `npm run build` into dist/test. Every process that may load
// isolated-vm runs with --no-node-snapshot (SPEC §1).
// `npx mocha dist/test/x/y.test.js` runs just the files named (mocha would add them to `spec`).
const named = process.argv.slice(2).some(arg => arg.endsWith('.test.js'))
module.exports = {
  spec: named ? [] : ['dist/test/**/*.test.js'],
  // needs the namespace internet of scripts/netns/run.sh: `npm run test:netns`
  ignore: ['dist/test/netns/**'],
  'node-option': ['no-node-snapshot'],
  reporter: './test/support/summary-reporter.cjs',
  timeout: 60000,
  exit: true
}
