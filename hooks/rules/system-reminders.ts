/**
 * Removing `<system-reminder>…</system-reminder>` blocks, exactly as the application's pattern
 * `/\s*<system-reminder>[\s\S]*?<\/system-reminder>/gi` does (system-hash.md rule 4.2; the
 * sub-task text uses it too) — but in linear time.
 *
 * Why not the regex itself: its leading `\s*` makes V8 retry from every position of a long
 * whitespace run, so a large body that is mostly whitespace takes quadratic time and a
 * backfill batch would stall on one row. The result is identical:
 *  - the regex's first match after `pos` starts at the beginning of the whitespace run that
 *    ends right before the first opening tag (never before `pos`): no earlier start can reach
 *    an opening tag through whitespace alone;
 *  - it ends at the first closing tag after that opening tag (lazy `[\s\S]*?`);
 *  - with no closing tag after the first opening tag, no later opening tag has one either, so
 *    there are no further matches.
 * test/hooks/system-reminders.test.ts checks this against the regex on random inputs.
 */

const OPEN = /<system-reminder>/gi
const CLOSE = /<\/system-reminder>/gi
/** JavaScript's `\s`, one character. */
const WHITESPACE = /\s/

export function removeSystemReminders(text: string): string {
  let out = ''
  let pos = 0
  for (;;) {
    OPEN.lastIndex = pos
    const open = OPEN.exec(text)
    if (!open) break
    CLOSE.lastIndex = open.index + open[0].length
    const close = CLOSE.exec(text)
    if (!close) break
    let start = open.index
    while (start > pos && WHITESPACE.test(text[start - 1]!)) start--
    out += text.slice(pos, start)
    pos = close.index + close[0].length
  }
  return out + text.slice(pos)
}
