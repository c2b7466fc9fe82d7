/**
 * Running the real graphile-migrate CLI. Its output is streamed line by line through
 * `redact()` because graphile-migrate can echo connection strings in its errors, and without
 * the Node stack traces it prints under them (set DEBUG to keep those).
 */
import { execa, type ResultPromise } from 'execa'
import { createInterface } from 'node:readline'
import { redact } from '../../lib/redact.js'
import { stackTraceFilter } from '../../lib/errors.js'

export interface RunOptions {
  cwd: string
  env: NodeJS.ProcessEnv
  /** Collect output instead of printing it. */
  quiet?: boolean
}

export interface RunResult {
  exitCode: number
  output: string
}

function pipeRedacted(stream: NodeJS.ReadableStream | null, sink: NodeJS.WriteStream, collect: string[], quiet: boolean) {
  if (!stream) return
  // graphile-migrate prints a stack trace under every error; only DEBUG shows it.
  const keep = stackTraceFilter()
  createInterface({ input: stream }).on('line', (line) => {
    if (!keep(line)) return
    const clean = redact(line)
    collect.push(clean)
    if (!quiet) sink.write(clean + '\n')
  })
}

export function startGraphileMigrate(args: string[], options: RunOptions): { child: ResultPromise; output: string[] } {
  const child = execa('graphile-migrate', args, {
    cwd: options.cwd,
    env: options.env,
    extendEnv: false,
    preferLocal: true,
    localDir: options.cwd,
    reject: false,
    stdin: 'inherit',
    buffer: false,
  })
  const output: string[] = []
  pipeRedacted(child.stdout, process.stdout, output, !!options.quiet)
  pipeRedacted(child.stderr, process.stderr, output, !!options.quiet)
  return { child, output }
}

export async function runGraphileMigrate(args: string[], options: RunOptions): Promise<RunResult> {
  const { child, output } = startGraphileMigrate(args, options)
  const result = await child
  // Let the line readers drain.
  await new Promise((r) => setImmediate(r))
  return { exitCode: result.exitCode ?? 1, output: output.join('\n') }
}
