/**
 * The backfills, in the order they run. The per-row ones (those with a `row` rule) run first,
 * together, in one pass (hooks/runner/row-pass/); then the others, in this order. Order
 * matters: sub-task linking reads the task_tool_invocation that task-invocations writes.
 * Append new backfills at the end unless they depend on nothing and something depends on them.
 */
import type { Backfill } from '../runner/backfill.js'
import { accountIds } from './account-ids.js'
import { parentRequestIds } from './parent-request-ids.js'
import { subtaskLinks } from './subtask-links.js'
import { systemHash } from './system-hash.js'
import { taskInvocations } from './task-invocations.js'

export const BACKFILLS: readonly Backfill[] = [taskInvocations, parentRequestIds, accountIds, systemHash, subtaskLinks]
