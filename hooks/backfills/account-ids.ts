/**
 * account_id from an operator-provided train → account mapping (ACCOUNT_MAPPING_FILE,
 * hooks/rules/account-mapping.ts). Only NULL account_id values are set; an account the
 * application (or legacy 005) recorded is never overwritten.
 *
 * No file configured → skipped with a note (not a failure). The file's fingerprint is the
 * ledger's config key, so configuring a file later, or changing it, re-runs the backfill.
 * A per-row rule (hooks/runner/row-rule.ts); the mapping reaches SQL as the `:input` parameter.
 */
import type { Backfill } from '../runner/backfill.js'
import { loadAccountMapping } from '../rules/account-mapping.js'

export const accountIds: Backfill = {
  name: 'account-ids',
  version: 1,
  description: 'account_id from the ACCOUNT_MAPPING_FILE train → account mapping, where NULL',
  tables: ['api_requests'],
  async prepare(settings) {
    if (!settings.accountMappingFile) {
      return { skip: 'ACCOUNT_MAPPING_FILE is not set; no account ids filled', configKey: 'no-mapping-file' }
    }
    const mapping = await loadAccountMapping(settings.accountMappingFile)
    return { configKey: `sha256:${mapping.fingerprint}`, input: mapping.entries }
  },
  row: {
    column: 'account_id',
    type: 'text',
    pending: 'a.account_id is null and (:input) ? a.train_id::text',
    read: { account: '(:input)->>a.train_id::text' },
    compute: (row) => (typeof row.account === 'string' ? { value: row.account } : null),
    guard: 'still-null',
  },
  steps: [],
}
