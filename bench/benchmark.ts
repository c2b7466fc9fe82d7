/**
 * `npm run bench -- [--rows N] [--json] [--writer-rate R] [--idle-seconds S] [--during-seconds S] [--legacy-timeout-s T] [--throughput-only] [--rounds N]`
 *
 * Measures the migration hooks against the legacy strategies on generated, realistic data
 * (see bench/README.md for what is measured and how). In order:
 *   1. migrate-from-empty and the commit shadow rebuild (on a quiet server);
 *   2. one template database: schema by the real chain, N generated rows;
 *   3. on fresh clones of it: system_hash (floor + legacy, then ours), linking (ours, then
 *      legacy), the application writer idle and during all backfills;
 *   4. the table; with --json the last stdout line is the JSON object.
 * Progress goes to stderr. Every database created is dropped at the end, and the embedded
 * server is stopped if this run started it — also after a failure or Ctrl-C.
 */
import { UserError, reportFatal } from '../lib/errors.js'
import { redact } from '../lib/redact.js'
import { measureLegacyLinking, measureOursLinking } from './measure-linking.js'
import { measureMigrate } from './measure-migrate.js'
import { measureFloor, measureLegacy, measureOurs } from './measure-system-hash.js'
import { measureWriter } from './measure-writer.js'
import { measureAdoption } from './measure-adoption.js'
import { measureAllBackfills, measureInsertCost, measureReadFloor, measureRewriteFloor } from './measure-throughput.js'
import { renderTable, renderThroughput, type Results, type Throughput, throughputJson, toJson } from './report.js'
import type { RunSide } from './measure-throughput.js'
import { hookEnv } from './hooks.js'
import { startBenchServer, type BenchServer } from './server.js'
import { buildTemplate } from './setup.js'
import { costOf, type RunCost, settle, toMb } from './server-cost.js'

const costText = (c: RunCost) =>
  `WAL ${toMb(c.walBytes)} MB, api_requests heap ${toMb(c.heapBefore)} → ${toMb(c.heapAfter)} MB, indexes ${toMb(c.indexesBefore)} → ${toMb(c.indexesAfter)} MB`

interface Args {
  rows: number
  json: boolean
  writerRate: number
  idleSeconds: number
  duringSeconds: number
  legacyTimeoutS: number
  /** HOOKS_* overrides for what-if runs (--hook-env NAME=VALUE). */
  hookEnv: Record<string, string>
  /** Only the throughput figures (every backfill, the floors, two workers): the 1M-row run. */
  throughputOnly: boolean
  /** Rounds of (every backfill, read floor, rewrite floor); the median ratio's round is reported. */
  rounds: number
}

const USAGE =
  'Usage: npm run bench -- [--rows N] [--json] [--writer-rate R] [--idle-seconds S] [--during-seconds S] [--legacy-timeout-s T] [--hook-env HOOKS_NAME=VALUE …] [--throughput-only] [--rounds N]'

function parseArgs(argv: string[]): Args {
  const args: Args = {
    rows: 100_000,
    json: false,
    writerRate: 50,
    idleSeconds: 30,
    duringSeconds: 120,
    legacyTimeoutS: 1800,
    hookEnv: {},
    throughputOnly: false,
    rounds: 3,
  }
  const numeric = (name: string, value: string | undefined, min: number) => {
    const n = Number(value)
    if (!value || !Number.isInteger(n) || n < min)
      throw new UserError(`${name} needs a whole number >= ${min} (got "${value ?? ''}"). ${USAGE}`)
    return n
  }
  for (let i = 0; i < argv.length; i++) {
    const eq = argv[i].indexOf('=')
    const [flag, inline] = eq > 0 && argv[i].startsWith('--') ? [argv[i].slice(0, eq), argv[i].slice(eq + 1)] : [argv[i], undefined]
    const value = () => inline ?? argv[++i]
    if (flag === '--json') args.json = true
    else if (flag === '--throughput-only') args.throughputOnly = true
    else if (flag === '--rows') args.rows = numeric('--rows', value(), 100)
    else if (flag === '--rounds') args.rounds = numeric('--rounds', value(), 1)
    else if (flag === '--writer-rate') args.writerRate = numeric('--writer-rate', value(), 1)
    else if (flag === '--idle-seconds') args.idleSeconds = numeric('--idle-seconds', value(), 1)
    else if (flag === '--during-seconds') args.duringSeconds = numeric('--during-seconds', value(), 1)
    else if (flag === '--legacy-timeout-s') args.legacyTimeoutS = numeric('--legacy-timeout-s', value(), 1)
    else if (flag === '--hook-env') {
      const setting = value() ?? ''
      const m = /^(HOOKS_[A-Z_]+)=(.*)$/.exec(setting)
      if (!m) throw new UserError(`--hook-env needs HOOKS_NAME=VALUE (got "${setting}"). ${USAGE}`)
      args.hookEnv[m[1]] = m[2]
    } else throw new UserError(`Unknown argument "${argv[i]}". ${USAGE}`)
  }
  return args
}

const log = (line: string) => process.stderr.write(redact(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`) + '\n')

/** Run `fn` on a fresh clone of the template, dropping the clone afterwards. */
async function onClone<T>(server: BenchServer, template: string, label: string, fn: (url: string) => Promise<T>): Promise<T> {
  const name = await server.cloneDatabase(template, label)
  try {
    return await fn(server.urlFor(name))
  } finally {
    await server.dropDatabase(name)
  }
}

/**
 * One round: every backfill, then the read floor, then the rewrite floor, each on a fresh
 * settled clone, one right after the other, so that the ratio compares times taken minutes
 * apart (this machine's speed drifts by 15 % and more over a quarter of an hour).
 */
async function measureRound(server: BenchServer, template: string, round: number, rounds: number): Promise<Round> {
  const tag = rounds > 1 ? `round ${round}/${rounds}: ` : ''
  const all = await onClone(server, template, 'all_ours', (url) => costOf(url, () => measureAllBackfills(url)))
  const walk = all.result.steps['row pass walk'] ?? 0
  const deciding = Object.entries(all.result.steps).reduce((sum, [phase, s]) => (phase.startsWith('subtask-links ') ? sum + s : sum), 0)
  log(
    `  ${tag}ours ${all.result.s.toFixed(1)} s (walk ${walk.toFixed(1)} s, linking's deciding steps ${deciding.toFixed(1)} s; longest txn ${all.result.maxTxnMs.toFixed(0)} ms), ${costText(all.cost)}`,
  )
  // Every side starts settled (server-cost.ts), not only those whose server cost is reported:
  // the ratios compare their times.
  const readFloor = await onClone(server, template, 'read_floor', (url) => settle(url).then(() => measureReadFloor(url)))
  const rewriteFloor = await onClone(server, template, 'rewrite_floor', (url) => costOf(url, () => measureRewriteFloor(url)))
  const ratio = all.result.s / (readFloor.s + rewriteFloor.result.s)
  log(
    `  ${tag}read floor ${readFloor.s.toFixed(1)} s, rewrite floor ${rewriteFloor.result.s.toFixed(1)} s (${costText(rewriteFloor.cost)}); ours / floors ${ratio.toFixed(2)}`,
  )
  return {
    ours: all.result,
    oursCost: all.cost,
    readFloorS: readFloor.s,
    rewriteFloorS: rewriteFloor.result.s,
    rewriteFloorCost: rewriteFloor.cost,
    ratio,
  }
}

/** Every backfill (one worker, then two), the read and rewrite floors, the insert cost. */
async function measureThroughput(server: BenchServer, template: string, legacyTimeoutMs: number, rounds: number): Promise<Throughput> {
  log(
    `throughput: ${rounds > 1 ? `${rounds} rounds of ` : ''}every backfill and the read and rewrite floors, then HOOKS_WORKERS=2, the legacy SQL, the insert cost …`,
  )
  const measured: Round[] = []
  for (let i = 1; i <= rounds; i++) measured.push(await measureRound(server, template, i, rounds))
  // The round with the median ratio speaks for the run (its own times, WAL and heap).
  const median = [...measured].sort((a, b) => a.ratio - b.ratio)[Math.floor((measured.length - 1) / 2)]
  const twoWorkers = await onClone(server, template, 'all_two', (url) =>
    settle(url).then(() => measureAllBackfills(url, { HOOKS_WORKERS: '2' })),
  )
  log(`  two workers ${twoWorkers.s.toFixed(1)} s (longest txn ${twoWorkers.maxTxnMs.toFixed(0)} ms)`)
  const legacy = await onClone(server, template, 'legacy_linking', (url) => costOf(url, () => measureLegacyLinking(url, legacyTimeoutMs)))
  log(`  legacy linking ${legacy.result.s.toFixed(1)} s, ${costText(legacy.cost)}`)
  const insert = await onClone(server, template, 'insert_cost', (url) => measureInsertCost(url))
  log(`  proxy write ${insert.withMs.toFixed(2)} ms with the retired indexes, ${insert.withoutMs.toFixed(2)} ms without`)
  return {
    ours: median.ours,
    oursCost: median.oursCost,
    twoWorkers,
    readFloorS: median.readFloorS,
    rewriteFloorS: median.rewriteFloorS,
    rewriteFloorCost: median.rewriteFloorCost,
    rounds: measured.map((r) => ({
      oursS: r.ours.s,
      readFloorS: r.readFloorS,
      rewriteFloorS: r.rewriteFloorS,
      ratio: r.ratio,
      maxTxnMs: r.ours.maxTxnMs,
      steps: r.ours.steps,
    })),
    legacyLinkingS: legacy.result.s,
    legacyCost: legacy.cost,
    insert,
  }
}

interface Round {
  ours: RunSide
  oursCost: RunCost
  readFloorS: number
  rewriteFloorS: number
  rewriteFloorCost: RunCost
  /** ours / (read floor + rewrite floor), within the round. */
  ratio: number
}

async function measureMigrateLogged(server: BenchServer) {
  log('Measuring migrate-from-empty and the commit shadow rebuild …')
  const migrate = await measureMigrate(server)
  log(`  migrate from empty ${migrate.migrateFromEmptyS.toFixed(2)} s, commit ${migrate.commitS.toFixed(2)} s`)
  return migrate
}

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv)
  Object.assign(hookEnv, args.hookEnv)
  const started = performance.now()
  const server = await startBenchServer(log)
  let interrupted = false
  const onSignal = () => {
    if (interrupted) return
    interrupted = true
    log('Interrupted: dropping the benchmark databases …')
    server.cleanup().finally(() => process.exit(130))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    const migrate = args.throughputOnly ? undefined : await measureMigrateLogged(server)
    const template = await buildTemplate(server, args.rows, log)
    const g = template.generated
    log(`Generated ${g.rows} rows in ${(g.ms / 1000).toFixed(0)} s (avg body ${(g.avgBodyBytes / 1024).toFixed(1)} KB).`)
    const throughput = await measureThroughput(server, template.name, args.legacyTimeoutS * 1000, args.rounds)
    if (args.throughputOnly || !migrate) {
      process.stdout.write(renderThroughput(args.rows, g, throughput) + '\n')
      if (args.json) process.stdout.write(JSON.stringify({ rows: args.rows, adoption: throughputJson(args.rows, throughput) }) + '\n')
      return 0
    }

    log('system_hash: floor (read + hash, no writes), then the legacy strategy (time-boxed) …')
    const { floor, legacy } = await onClone(server, template.name, 'hash_legacy', async (url) => ({
      floor: await measureFloor(url),
      legacy: await measureLegacy(url),
    }))
    log(
      `  floor ${floor.rowsPerS.toFixed(0)} rows/s; legacy ${legacy.rowsPerS.toFixed(0)} rows/s (${legacy.rows} rows, ${(legacy.ms / 1000).toFixed(0)} s)`,
    )
    log('system_hash: our backfill through the hook runner …')
    const ours = await onClone(server, template.name, 'hash_ours', (url) => measureOurs(url, args.rows))
    log(
      `  ours ${ours.rowsPerS.toFixed(0)} rows/s (${(ours.ms / 1000).toFixed(0)} s), longest txn ${ours.maxTxnMs.toFixed(0)} ms, peak RSS ${ours.peakRssMb.toFixed(0)} MB`,
    )

    log('linking: our backfills …')
    const oursLinking = await onClone(server, template.name, 'link_ours', (url) => measureOursLinking(url))
    log(`  ours ${oursLinking.s.toFixed(1)} s, longest txn ${oursLinking.maxTxnMs.toFixed(0)} ms`)
    log('linking: legacy 003/007/008 SQL …')
    const legacyLinking = await onClone(server, template.name, 'link_legacy', (url) =>
      measureLegacyLinking(url, args.legacyTimeoutS * 1000),
    )
    log(`  legacy ${legacyLinking.s.toFixed(1)} s${legacyLinking.timedOut ? ' (time limit hit)' : ''}`)

    log(`writer: ${args.idleSeconds} s idle, then up to ${args.duringSeconds} s during the backfills …`)
    const writer = await onClone(server, template.name, 'writer', (url) =>
      measureWriter(url, { rate: args.writerRate, idleSeconds: args.idleSeconds, duringSeconds: args.duringSeconds }),
    )

    log('adoption: a copy stripped to a Docker-init database, adopted (schema step) while the writer runs …')
    const adoption = await onClone(server, template.name, 'adopt', (url) => measureAdoption(server, url, 'adopt_shadow', args.writerRate))
    log(
      `  schema step ${adoption.schemaStepS.toFixed(1)} s (${adoption.indexesBuilt} indexes built concurrently); writer p99 ${adoption.writer.p99Ms.toFixed(1)} ms, max ${adoption.writer.maxMs.toFixed(1)} ms; longest lock wait ${adoption.longestLockWaitMs.toFixed(0)} ms`,
    )

    const results: Results = {
      rows: args.rows,
      server: server.description,
      hookSettings: Object.entries(args.hookEnv).map(([k, v]) => `${k}=${v}`),
      generated: g,
      ours,
      legacy,
      floor,
      oursLinking,
      legacyLinking,
      migrate,
      writer,
      adoption,
      throughput,
      totalS: (performance.now() - started) / 1000,
    }
    process.stdout.write(renderTable(results) + '\n')
    if (args.json) process.stdout.write(JSON.stringify(toJson(results)) + '\n')
    return 0
  } finally {
    if (!interrupted) await server.cleanup()
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => process.exit(reportFatal(error, 'Benchmark failed')),
)
