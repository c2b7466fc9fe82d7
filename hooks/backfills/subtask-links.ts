/**
 * Sub-task linking, docs/subtasks.md "The backfill we want" steps 2–5: link each
 * unlinked sub-task conversation to the Task call that started it, deterministically.
 *
 * Staged, because matching is global (greedy, in time order) and must scale: the data is read
 * by key walks into scratch tables (subtask-links/scratch.ts), matched and numbered there, and
 * only then applied to api_requests, a few conversations per transaction. Every step keeps its
 * cursor in the ledger together with its scratch writes, so a run killed at any point and
 * resumed ends in exactly the state of an uninterrupted run.
 *
 * Depends on task-invocations having run (it reads task_tool_invocation's `input.prompt`).
 */
import type { Backfill } from '../runner/backfill.js'
import { applyMatches } from './subtask-links/apply.js'
import { matchConversations, numberBranches } from './subtask-links/match.js'
import { claimExisting, conversationTexts, scanCalls, scanRows } from './subtask-links/scan.js'
import { dropScratch, prepareScratch } from './subtask-links/scratch.js'

export const subtaskLinks: Backfill = {
  name: 'subtask-links',
  version: 1,
  description: 'link sub-task conversations to the Task call that started them (subtask_N branches)',
  tables: ['api_requests'],
  steps: [
    prepareScratch,
    scanRows,
    conversationTexts,
    scanCalls,
    claimExisting,
    matchConversations,
    numberBranches,
    applyMatches,
    dropScratch,
  ],
}
