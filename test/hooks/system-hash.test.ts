/**
 * hooks/rules/system-prompt-hash.ts against the application's stored values (pure, no database).
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { computeSystemHash, stableSystemText, systemText } from '../../hooks/rules/system-prompt-hash.js'

// The application's stored values (docs/system-hash.md), kept in the repository so the test
// runs anywhere; SYSTEM_HASH_VECTORS points at another copy to check against the code.
const VECTORS_PATH = process.env.SYSTEM_HASH_VECTORS ?? join(import.meta.dirname, 'fixtures', 'system-hash.json')
const vectors = JSON.parse(readFileSync(VECTORS_PATH, 'utf8')) as Array<{ system: unknown; expected_system_hash: string | null }>
const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex')

describe('computeSystemHash', () => {
  it('has vectors to check', () => {
    expect(vectors.length).toBeGreaterThanOrEqual(18)
  })

  it('stores each expected hash as the application does: lowercase SHA-256 hex, or null', () => {
    for (const v of vectors) expect(v.expected_system_hash === null || /^[0-9a-f]{64}$/.test(v.expected_system_hash)).toBe(true)
  })

  it.each(vectors.map((v, i) => [i, v] as const))('reproduces vector %i', (_i, v) => {
    expect(computeSystemHash(v.system)).toBe(v.expected_system_hash)
  })

  it('gives NULL for a missing system, other types, and text that normalises to nothing', () => {
    expect(computeSystemHash(undefined)).toBeNull()
    expect(computeSystemHash(42)).toBeNull()
    expect(computeSystemHash({ text: 'x' })).toBeNull()
    expect(computeSystemHash([])).toBeNull()
    expect(computeSystemHash('<system-reminder>only</system-reminder>')).toBeNull()
    expect(computeSystemHash('   \n  ')).toBeNull()
  })

  it('joins block texts with "\\n" before normalising; a block without text contributes ""', () => {
    expect(systemText([{ type: 'text', text: 'a' }, { type: 'image' }, { type: 'text', text: 'b' }])).toBe('a\n\nb')
    expect(
      computeSystemHash([
        { type: 'text', text: 'a' },
        { type: 'text', text: 'b' },
      ]),
    ).toBe(sha('a\nb'))
  })

  it('keeps only the CLI phrase when the trimmed text starts with it', () => {
    const phrase = 'You are an interactive CLI tool that helps users with software engineering tasks'
    expect(stableSystemText(`  \n${phrase}. Anything at all`)).toBe(phrase)
    expect(computeSystemHash(`${phrase}!`)).toBe(sha(phrase))
  })

  it('does not normalise line endings', () => {
    expect(computeSystemHash('a\r\nb')).toBe(sha('a\r\nb'))
    expect(computeSystemHash('a\r\nb')).not.toBe(computeSystemHash('a\nb'))
  })

  it('removes transient context and every reminder, case-insensitively', () => {
    expect(
      stableSystemText(
        'A<transient_context>x</transient_context>B<system-reminder>1</system-reminder> C <SYSTEM-REMINDER>2</SYSTEM-REMINDER>',
      ),
    ).toBe('AB C')
  })
})
