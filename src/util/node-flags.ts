// Node flags of every long-running stem process (the node, as bin/stem.js's shebang has them,
// and each cell host): isolated-vm needs no snapshot, and a 1 MiB young generation keeps an
// idle process's RSS about 50 MiB lower (README "Performance").
export const NODE_FLAGS = ['--no-node-snapshot', '--max-semi-space-size=1']
