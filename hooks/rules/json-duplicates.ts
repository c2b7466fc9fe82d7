/**
 * Duplicate keys in JSON text. `JSON.parse` silently keeps the last of two equal keys, which
 * in a mapping file means an operator's entry is ignored without a word; we want an error.
 *
 * Call it on text that `JSON.parse` has already accepted: the scanner then only has to track
 * strings, nesting and whether the next string in an object is a key.
 */

export interface DuplicateKey {
  key: string
  /** JSON-pointer-ish path of the object holding the duplicate ("" for the top level). */
  path: string
}

interface Frame {
  kind: 'object' | 'array'
  keys: Set<string>
  expectingKey: boolean
  path: string
  lastKey?: string
  index: number
}

/** Read the JSON string literal starting at text[start] (a quote); return its value and end. */
function readString(text: string, start: number): { value: string; end: number } {
  let i = start + 1
  while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1
  return { value: JSON.parse(text.slice(start, i + 1)) as string, end: i + 1 }
}

/** Every duplicated key, in order of appearance. */
export function findDuplicateKeys(text: string): DuplicateKey[] {
  const found: DuplicateKey[] = []
  const stack: Frame[] = []
  const childPath = (parent: Frame | undefined) =>
    parent === undefined ? '' : parent.kind === 'object' ? `${parent.path}/${parent.lastKey}` : `${parent.path}/${parent.index}`
  for (let i = 0; i < text.length; ) {
    const ch = text[i]
    const top = stack[stack.length - 1]
    if (ch === '"') {
      const { value, end } = readString(text, i)
      if (top?.kind === 'object' && top.expectingKey) {
        if (top.keys.has(value)) found.push({ key: value, path: top.path })
        top.keys.add(value)
        top.lastKey = value
        top.expectingKey = false
      }
      i = end
      continue
    }
    if (ch === '{' || ch === '[') {
      stack.push({ kind: ch === '{' ? 'object' : 'array', keys: new Set(), expectingKey: ch === '{', path: childPath(top), index: 0 })
    } else if (ch === '}' || ch === ']') {
      stack.pop()
    } else if (ch === ',' && top) {
      if (top.kind === 'object') top.expectingKey = true
      else top.index++
    }
    i++
  }
  return found
}
