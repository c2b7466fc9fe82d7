/**
 * Scratch tables of the sub-task linking backfill, in the `migration_hooks` schema.
 *
 * They hold the intermediate results (each conversation's first row, every Task call, the
 * matches) so that matching never needs a correlated subquery per row, and so that an
 * interrupted run resumes with exactly the state it had: every step writes them in the same
 * transaction as its ledger cursor. They are created by the first step and dropped when the
 * row pass, which reads the matches, marks the backfill done.
 */
import type pg from 'pg'

import type { Step } from '../../runner/backfill.js'
import { LEDGER_SCHEMA } from '../../runner/ledger.js'
import { retireTables } from '../../runner/retired-tables.js'
import { CREATE_SEEN_TABLES, SEEN_TABLES, START_SEEN_SCAN } from '../task-invocations.js'

export const CONVERSATIONS = `${LEDGER_SCHEMA}.subtask_conversations`
export const CALLS = `${LEDGER_SCHEMA}.subtask_calls`
export const EXISTING = `${LEDGER_SCHEMA}.subtask_existing_links`
export const MATCHES = `${LEDGER_SCHEMA}.subtask_matches`
export const PROMPTS = `${LEDGER_SCHEMA}.subtask_prompts`

/**
 * A timestamptz as text for a cursor: ISO 8601 in UTC with microseconds, which reads back
 * exactly whatever the session's DateStyle or TimeZone (a JS Date would drop microseconds).
 */
export const cursorTime = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`

/**
 * Discard the scratch tables — by the first step, and after the row pass wrote the links (in
 * the transaction marking it done): retired (runner/retired-tables.ts), so that the
 * transaction doing it stays short whatever their size; the runner drops them right after.
 */
export async function discardScratchTables(client: pg.ClientBase): Promise<void> {
  await client.query(`drop function if exists ${LEDGER_SCHEMA}.subtask_match_in_order(uuid[], bigint)`)
  await retireTables(client, [MATCHES, CALLS, CONVERSATIONS, EXISTING, PROMPTS, ...SEEN_TABLES])
}

const CREATE = [
  // One row per conversation: its earliest row (by timestamp, then request_id, and where it
  // lay in the heap). conversation-texts marks the candidates — state 'candidate', their
  // text's md5, and the text too when another prompt shares that md5; every other
  // conversation keeps state null (its step's cursor tells how far it has examined).
  `create table ${CONVERSATIONS} (
     conversation_id uuid primary key,
     first_ts timestamptz not null,
     first_request_id uuid not null,
     first_ctid tid not null,
     has_linked boolean not null,
     state text,
     text text,
     text_md5 text)`,
  `create index on ${CONVERSATIONS} (first_ts, first_request_id) where state = 'candidate'`,
  // conversation-texts reads the first rows in the heap's order (first_ctid: where the row was
  // when scan-conversations saw it; only an order, the row is still found by its key).
  `create index on ${CONVERSATIONS} (first_ctid, conversation_id)`,
  // One row per Task call with a string prompt. marked: the element already carries a
  // linked_conversation_id; claimed: not available for matching; accounted: an existing
  // link has been attributed to it (see claim-existing in scan.ts).
  `create table ${CALLS} (
     parent_request_id uuid not null,
     position integer not null,
     prompt text not null,
     prompt_md5 text not null,
     parent_ts timestamptz not null,
     parent_end timestamptz not null,
     parent_conversation_id uuid not null,
     call_id text,
     marked boolean not null,
     claimed boolean not null,
     accounted boolean not null default false,
     primary key (parent_request_id, position))`,
  `create index on ${CALLS} (prompt_md5, parent_ts desc, parent_request_id, position) where not claimed`,
  // One row per prompt md5 of CALLS: one of its prompts, and whether another, different
  // prompt has that md5 too (shared). Kept by scan-calls as it inserts, one probe by key per
  // md5, so that conversation-texts decides by key whether a text must be kept beside its md5.
  // Asking CALLS instead ("is there a call with this md5 and another prompt?") visits every
  // call of the md5 when none differs: a prompt repeated n times cost n² visits.
  `create table ${PROMPTS} (prompt_md5 text primary key, prompt text not null, shared boolean not null)`,
  // Rows that already have a parent_task_request_id (linked by the application or legacy 003).
  `create table ${EXISTING} (request_id uuid primary key, parent_task_request_id uuid not null, conversation_id uuid)`,
  `create index on ${EXISTING} (conversation_id)`,
  // The decisions: which conversation goes to which call, and (after numbering) its branch.
  `create table ${MATCHES} (
     conversation_id uuid primary key,
     parent_request_id uuid not null,
     position integer not null,
     parent_conversation_id uuid not null,
     first_ts timestamptz not null,
     first_request_id uuid not null,
     branch text)`,
  `create index on ${MATCHES} (parent_conversation_id)`,
  `create index on ${MATCHES} (parent_request_id)`,
  `create index on ${MATCHES} (first_ts, first_request_id)`,
  // The Task blocks scan-calls reads, kept for task-invocations' walk (see task-invocations.ts),
  // with the horizon before which a row's version was surely the one scanned: taken now,
  // before the scan; marked complete by the scan's last batch.
  ...CREATE_SEEN_TABLES,
  START_SEEN_SCAN,
]

/** First step: fresh scratch tables (a version bump or a restart discards old ones). */
export const prepareScratch: Step = {
  name: 'prepare',
  scratchOnly: true,
  async runBatch(ctx) {
    await discardScratchTables(ctx.client)
    for (const sql of CREATE) await ctx.client.query(sql)
    return { changed: 0, skipped: 0, cursor: null }
  },
}

/**
 * `step`, whose last batch also analyzes `tables` (scratch tables it filled or changed).
 * The steps after it plan their queries on those tables, which are created empty: until
 * autovacuum happens to analyze them the planner guesses their sizes, and the plans it
 * chooses depend on when autovacuum came round (100k rows: the match step took 1.0 s in some
 * runs and 8.2 s in others; with this ANALYZE, 0.7–1.1 s in the runs since). A small sample
 * is enough for the row counts and distinct values those plans depend on, and keeps the
 * ANALYZE to milliseconds inside the batch transaction.
 */
export function analyzedWhenDone(step: Step, tables: string[]): Step {
  return {
    ...step,
    async runBatch(ctx, cursor) {
      const result = await step.runBatch(ctx, cursor)
      if (result.cursor === null) {
        await ctx.client.query(`set local default_statistics_target = ${SCRATCH_STATISTICS_TARGET}`)
        for (const table of tables) await ctx.client.query(`analyze ${table}`)
      }
      return result
    },
  }
}

/** 3,000 sampled rows per table (300 × target). */
const SCRATCH_STATISTICS_TARGET = 10

/**
 * A row's conversation as it was before this linking run moved it: a row of a sub-task
 * conversation that the row pass has already moved into its parent's conversation (its branch,
 * parent and new conversation are a match's) gets its old conversation back; any other row
 * keeps its own. parent-request-ids compares rows by it, because in the same row pass some
 * rows of a conversation may be moved and others not yet (the sequential order it replaces
 * compared them before any move). Cheap for an unlinked row (no lookup); without the scratch
 * tables, the identity.
 */
export const CONVERSATION_BEFORE_LINKING = `${LEDGER_SCHEMA}.conversation_before_linking`

export const CREATE_CONVERSATION_BEFORE_LINKING = `create or replace function ${CONVERSATION_BEFORE_LINKING}(uuid, text, uuid)
returns uuid language plpgsql stable set search_path = pg_catalog, pg_temp as $fn$
begin
  if $3 is null or $2 is null or to_regclass('${MATCHES}') is null then
    return $1;
  end if;
  return coalesce((select m.conversation_id from ${MATCHES} m
                   where m.parent_conversation_id = $1 and m.branch = $2 and m.parent_request_id = $3), $1);
end
$fn$`
