/**
 * account_id from an operator-provided train → account mapping (ACCOUNT_MAPPING_FILE,
 * hooks/rules/account-mapping.ts). Only NULL account_id values are set; an account the
 * application (or legacy 005) recorded is never overwritten.
 *
 * No file configured → skipped with a note (not a failure). The file's fingerprint is the
 * ledger's config key, so configuring a file later, or changing it, re-runs the backfill.
 */
import type { Backfill } from '../runner/backfill.js'
import { loadAccountMapping, type AccountMapping } from '../rules/account-mapping.js'
import { preExisting } from '../runner/high-water.js'
import { keyWalkStep, rangeFilter } from '../runner/key-walk.js'

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
    return { configKey: `sha256:${mapping.fingerprint}`, input: mapping }
  },
  steps: [
    keyWalkStep('walk', async (ctx, after, upTo) => {
      const mapping = ctx.input as AccountMapping
      const range = rangeFilter(after, upTo, 1, 'a.request_id')
      const p = range.params.length + 1
      const result = await ctx.client.query(
        `update public.api_requests a set account_id = m.account_id
         from jsonb_each_text($${p}::jsonb) as m(train_id, account_id)
         where ${range.sql} and a.account_id is null and a.train_id = m.train_id and ${preExisting('a')}`,
        [...range.params, JSON.stringify(mapping.entries)],
      )
      return { changed: result.rowCount ?? 0, skipped: 0 }
    }),
  ],
}
