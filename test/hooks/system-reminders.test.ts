/** The linear-time reminder removal gives exactly what the application's regex gives. */
import { describe, expect, it } from 'vitest'
import { removeSystemReminders } from '../../hooks/rules/system-reminders.js'

const APP_PATTERN = /\s*<system-reminder>[\s\S]*?<\/system-reminder>/gi
const TOKENS = [
  '<system-reminder>',
  '<SYSTEM-Reminder>',
  '</system-reminder>',
  '</System-REMINDER>',
  ' ',
  '  ',
  '\n',
  '\t',
  '\r\n',
  '\u00a0',
  '\u3000',
  'a',
  'bc',
  '<',
  '/',
  'system-reminder>',
  'x y',
]

/** Small deterministic PRNG so a failure can be replayed. */
function prng(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed / 0x7fffffff
  }
}

describe('removeSystemReminders', () => {
  it('matches the regex on fixed cases', () => {
    for (const text of [
      '',
      'plain',
      'a <system-reminder>x</system-reminder> b',
      'a\n\n  <system-reminder>x</system-reminder><system-reminder>y</system-reminder>b',
      'a <system-reminder>unclosed',
      'a </system-reminder> <system-reminder>x</system-reminder>',
      '   <SYSTEM-REMINDER>x</system-Reminder>   ',
      '<system-reminder><system-reminder>x</system-reminder>y</system-reminder>',
    ]) {
      expect(removeSystemReminders(text), JSON.stringify(text)).toBe(text.replace(APP_PATTERN, ''))
    }
  })

  it('matches the regex on 5000 random token strings', () => {
    const rand = prng(20261124)
    for (let i = 0; i < 5000; i++) {
      const n = Math.floor(rand() * 14)
      let text = ''
      for (let k = 0; k < n; k++) text += TOKENS[Math.floor(rand() * TOKENS.length)]
      expect(removeSystemReminders(text), JSON.stringify(text)).toBe(text.replace(APP_PATTERN, ''))
    }
  })

  it('handles a 10 MB run of whitespace before an unclosed and a closed tag', () => {
    const ws = ' '.repeat(10 * 1024 * 1024)
    expect(removeSystemReminders(`a${ws}<system-reminder>never closed`)).toBe(`a${ws}<system-reminder>never closed`)
    expect(removeSystemReminders(`a${ws}<system-reminder>x</system-reminder>b`)).toBe('ab')
  })
})
