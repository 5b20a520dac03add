// Real `stem` processes for multi-process tests: the helpers live with the scripts'
// support code, which `npm run chaos` and the benches share.
export * from '../../scripts/support/stem-process.js'
