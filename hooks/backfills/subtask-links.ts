/**
 * Sub-task linking, docs/subtasks.md "The backfill we want" steps 2–5: link each
 * unlinked sub-task conversation to the Task call that started it, deterministically.
 *
 * Matching is global (greedy, in time order) and must scale, so it is decided first, by steps
 * that only read api_requests: key walks into scratch tables (subtask-links/scratch.ts), then
 * matching and numbering there. Every step keeps its cursor in the ledger together with its
 * scratch writes, so a run killed at any point resumes in exactly the state it had. The row
 * pass then writes the decisions (subtask-links/link-rules.ts) with the other backfills'
 * columns — one new version per row — and drops the scratch tables when it marks it done.
 *
 * It reads the Task calls as task-invocations leaves them, so the two run together.
 */
import type { Backfill } from '../runner/backfill.js'
import { parentCalls, subtaskRows } from './subtask-links/link-rules.js'
import { matchConversations, numberBranches } from './subtask-links/match.js'
import { claimExisting, conversationTexts, scanCalls, scanConversations, scanLinks } from './subtask-links/scan.js'
import {
  analyzedWhenDone,
  CALLS,
  CONVERSATIONS,
  discardScratchTables,
  EXISTING,
  MATCHES,
  PROMPTS,
  prepareScratch,
} from './subtask-links/scratch.js'

export const subtaskLinks: Backfill = {
  name: 'subtask-links',
  // 3: the PROMPTS scratch table (a run part-way through version 2's scratch steps starts over).
  version: 3,
  description: 'link sub-task conversations to the Task call that started them (subtask_N branches)',
  tables: ['api_requests'],
  needs: ['task-invocations', 'parent-request-ids'],
  // Each filling step analyzes what it filled before the next one plans queries on it.
  steps: [
    prepareScratch,
    analyzedWhenDone(scanLinks, [EXISTING]),
    analyzedWhenDone(scanConversations, [CONVERSATIONS]),
    analyzedWhenDone(scanCalls, [CALLS, PROMPTS]),
    analyzedWhenDone(conversationTexts, [CONVERSATIONS]),
    claimExisting,
    analyzedWhenDone(matchConversations, [MATCHES]),
    numberBranches,
  ],
  row: [subtaskRows, parentCalls],
  afterRowPass: discardScratchTables,
}
