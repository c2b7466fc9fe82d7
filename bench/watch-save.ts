/**
 * `npm run bench:watch [-- --saves N]`: how long `npm run db:watch` takes to apply a save of
 * migrations/current.sql, from the write to the moment its effect is visible in the
 * database, when the hooks have nothing to do.
 *
 * Works in a scratch copy of the project (its own migrations folder) against two fresh
 * databases on the benchmark's server; prints one line per save and the median and maximum.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { execa } from 'execa'
import { withClient } from '../lib/connection.js'
import { sleep } from '../lib/retry.js'
import { PROJECT_ROOT, startBenchServer } from './server.js'

function scratchProject(): string {
  mkdirSync(join(PROJECT_ROOT, '.tmp'), { recursive: true })
  const dir = mkdtempSync(join(PROJECT_ROOT, '.tmp', 'watch-bench-'))
  for (const f of ['.gmrc', 'package.json', 'migrations', 'schema']) cpSync(join(PROJECT_ROOT, f), join(dir, f), { recursive: true })
  for (const f of ['node_modules', 'lib', 'scripts', 'hooks', 'tsconfig.json']) symlinkSync(join(PROJECT_ROOT, f), join(dir, f))
  return dir
}

async function main(): Promise<void> {
  const savesArg = process.argv.indexOf('--saves')
  const saves = savesArg > 0 ? Number(process.argv[savesArg + 1]) : 10
  const server = await startBenchServer((line) => console.error(line))
  const dir = scratchProject()
  try {
    const databaseUrl = server.urlFor(await server.createDatabase('watch'))
    const shadowUrl = server.urlFor(await server.createDatabase('watch_shadow'))
    const env = { ...process.env, DATABASE_URL: databaseUrl, SHADOW_DATABASE_URL: shadowUrl, ROOT_DATABASE_URL: server.rootUrl }
    const watcher = execa('node', ['--import', 'tsx', join(dir, 'scripts', 'cli', 'db.ts'), 'watch'], {
      cwd: dir,
      env,
      reject: false,
      all: true,
    })
    let output = ''
    watcher.all?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
    })
    const deadline = Date.now() + 120_000
    while (!output.includes('Watching') && Date.now() < deadline) await sleep(50)
    if (!output.includes('Watching')) throw new Error(`db:watch did not start:\n${output}`)
    const timings: number[] = []
    const cycles: number[] = []
    const hookRuns = () => output.split('Migration hooks:').length - 1
    await withClient(databaseUrl, async (client) => {
      for (let i = 1; i <= saves; i++) {
        const runsBefore = hookRuns()
        const started = performance.now()
        writeFileSync(join(dir, 'migrations', 'current.sql'), `create or replace view watch_probe as select ${i} as n;\n`)
        for (;;) {
          const n = await client.query('select n from public.watch_probe').then(
            (r) => r.rows[0].n as number,
            () => 0, // not created yet
          )
          if (n === i) break
          if (performance.now() - started > 30_000) throw new Error(`save ${i} was not applied within 30 s:\n${output}`)
          await sleep(2)
        }
        const ms = performance.now() - started
        // The hooks run after the apply; the cycle ends with their summary.
        while (hookRuns() === runsBefore && performance.now() - started < 30_000) await sleep(2)
        const cycle = performance.now() - started
        timings.push(ms)
        cycles.push(cycle)
        console.log(`save ${i}: applied in ${ms.toFixed(0)} ms, hooks done after ${cycle.toFixed(0)} ms`)
      }
    })
    watcher.kill('SIGINT')
    await watcher
    const summary = (values: number[]) => {
      const sorted = [...values].sort((a, b) => a - b)
      return `median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} ms, max ${sorted.at(-1)!.toFixed(0)} ms`
    }
    console.log(`db:watch, ${saves} saves: applied ${summary(timings)} (target ≤ 300 ms); with the hooks done ${summary(cycles)}`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
    await server.cleanup()
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error instanceof Error ? error.message : error)
    process.exit(1)
  },
)
