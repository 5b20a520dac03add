// Progress of long CLI operations: a spinner line on a terminal, plain lines otherwise
// (a pipe, a log file, CI), nothing with --json. `step` starts or updates the current
// step; `done` closes it with a final line.
export interface Progress {
  step: (text: string) => void
  done: (text: string) => void
  /** stops the spinner without a final line (before an error message) */
  clear: () => void
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']

/** `plain`: lines even on a terminal (`stem dev`, whose streamed log lines a spinner would overwrite) */
export function createProgress (options: { json?: boolean, plain?: boolean, out?: NodeJS.WriteStream } = {}): Progress {
  const out = options.out ?? process.stdout
  if (options.json === true) return { step: () => {}, done: () => {}, clear: () => {} }
  if (out.isTTY !== true || options.plain === true) {
    let last = ''
    return {
      step: text => { if (text !== last) { out.write(text + '\n'); last = text } },
      done: text => { out.write(text + '\n'); last = '' },
      clear: () => {}
    }
  }
  let text = ''
  let frame = 0
  let timer: NodeJS.Timeout | undefined
  const draw = (): void => { out.write(`\r\x1b[2K${FRAMES[frame++ % FRAMES.length]} ${text}`) }
  const stop = (): void => {
    if (timer === undefined) return
    clearInterval(timer)
    timer = undefined
    out.write('\r\x1b[2K')
  }
  return {
    step: next => {
      text = next
      if (timer === undefined) {
        timer = setInterval(draw, 80)
        timer.unref()
      }
      draw()
    },
    done: final => { stop(); out.write(`✔ ${final}\n`) },
    clear: stop
  }
}
