import { computeSystemHash } from '../hooks/lib/system-hash.js'
import { subtaskText } from '../hooks/lib/subtask-text.js'
const cases: Record<string, string> = {
  words: 'The quick brown fox jumps over the lazy dog. '.repeat(230_000),
  newlines: 'line\n'.repeat(2_000_000),
  spaces100k: 'x' + ' '.repeat(100_000) + 'y',
  spaces1M: 'x' + ' '.repeat(1_000_000) + 'y',
  blanklines: '\n'.repeat(1_000_000),
  status: 'Status:\n' + 'M file\n'.repeat(1_000_000),
  recent: 'Recent commits: x\n' + 'abc\n'.repeat(1_000_000),
}
for (const [name, text] of Object.entries(cases)) {
  let t = Date.now(); computeSystemHash(text); const a = Date.now() - t
  t = Date.now(); subtaskText([{ role: 'user', content: text }]); const b = Date.now() - t
  console.log(name, text.length, 'hash ms', a, 'subtask ms', b)
}
