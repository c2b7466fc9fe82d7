/**
 * Adopting a database that lacks the chain's big indexes, while the application writes: the
 * production event in small. A copy of the generated data is stripped back to what a
 * Docker-init database has — no graphile_migrate record, no hooks ledger, and without the
 * api_requests/streaming_chunks indexes Docker-init never had (among them the GIN index over
 * response bodies) — then `db:migrate --schema-only` adopts it while bench/writer-child.ts
 * stores requests at a fixed rate. Measured: the schema step's seconds, the writer's p99 and
 * max during it, and the longest time any application statement waited for a lock (sampled
 * from pg_stat_activity every 20 ms).
 */
import { withClient } from '../lib/connection.js'
import { sleep } from '../lib/retry.js'
import { type WriterStats, startWriter } from './measure-writer.js'
import { check, tsx, urlEnv } from './processes.js'
import type { BenchServer } from './server.js'

/** Indexes a Docker-init database does not have (test/fixtures/legacy/docker-init.sql). */
const DOCKER_INIT_LACKS = [
  'idx_streaming_chunks_request_id',
  'idx_requests_conversation_detail',
  'idx_requests_account_timestamp',
  'idx_api_requests_parent_request_id',
  'idx_api_requests_train_timestamp_response',
]

export interface AdoptionResult {
  schemaStepS: number
  writer: WriterStats
  longestLockWaitMs: number
  indexesBuilt: number
}

async function stripToDockerInit(url: string): Promise<void> {
  await withClient(url, async (c) => {
    await c.query('drop schema if exists graphile_migrate cascade')
    await c.query('drop schema if exists migration_hooks cascade')
    for (const name of DOCKER_INIT_LACKS) await c.query(`drop index if exists public.${c.escapeIdentifier(name)}`)
  })
}

export async function measureAdoption(server: BenchServer, url: string, shadowName: string, rate: number): Promise<AdoptionResult> {
  await stripToDockerInit(url)
  const writer = startWriter(url, rate)
  await sleep(2000)
  let sampling = true
  let longestLockWaitMs = 0
  const sampler = withClient(url, async (c) => {
    while (sampling) {
      const { rows } = await c.query<{ ms: number | null }>(
        `select max(extract(epoch from clock_timestamp() - state_change) * 1000)::float8 as ms
           from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock' and application_name not like 'db:migrate%'`,
      )
      longestLockWaitMs = Math.max(longestLockWaitMs, rows[0]?.ms ?? 0)
      await sleep(20)
    }
  })
  const env = urlEnv(url, server.urlFor(shadowName), server.rootUrl)
  const run = check('db:migrate --schema-only (adoption)', await tsx('scripts/cli/db.ts', ['migrate', '--schema-only'], env))
  sampling = false
  await sampler
  const stats = await writer.stop()
  return {
    schemaStepS: run.ms / 1000,
    writer: stats,
    longestLockWaitMs,
    indexesBuilt: (run.output.match(/Online schema step: built /g) ?? []).length,
  }
}
