/**
 * Passwords must never reach a terminal or a log file. Everything this project prints that
 * could contain a connection string goes through `redact()`.
 *
 * Two layers:
 *  1. positional: a password in a place where a connection string holds one is replaced by
 *     `***`, whatever its length:
 *       - `scheme://user:password@host` (the password runs to the last `@` of the URL, so an
 *         unencoded `@`, `:` or `/` in it is covered);
 *       - `?password=...` and `&sslpassword=...` query parameters of a URL;
 *       - libpq keyword/value strings, `host=h password=secret` or `password='with \'quotes\''`
 *         (also `sslpassword=`, `PGPASSWORD=` and other `...password=` settings);
 *  2. every password we know about (from the URL environment variables or registered at run
 *     time, e.g. the embedded server's generated one) is replaced wherever it appears, because
 *     tools such as `pg` sometimes echo a password outside of a connection string.
 *
 * Where a value ends: at white space, and also at a quote mark that is followed by white space,
 * punctuation or the end of the text (so `"postgres://u:p@h/db",` in JSON keeps its closing
 * quote). Over-redacting is preferred to leaking: when in doubt, more text becomes `***`.
 */

const knownSecrets = new Set<string>()

const URL_ENV_VARS = ['DATABASE_URL', 'SHADOW_DATABASE_URL', 'ROOT_DATABASE_URL', 'GM_DBURL', 'TEST_DATABASE_URL']

/** Query parameters whose value libpq treats as a password (compared in lower case). */
const SECRET_PARAMS = new Set(['password', 'sslpassword'])

/** The start of a URL: its scheme and `://`. */
const SCHEME = /[a-z][a-z0-9+.-]*:\/\//gi

/**
 * A keyword/value password setting, up to its value: `password`, `sslpassword`, and any other
 * word ending in "password" (`PGPASSWORD`, `POSTGRES_PASSWORD`), with optional blanks around `=`.
 */
const KEYWORD = /(?<![A-Za-z0-9_])[A-Za-z0-9_]*password[ \t]*=[ \t]*/gi

const QUOTES = `"'\``

/** What may follow a quote mark that closes a quoted connection string. */
const AFTER_CLOSING_QUOTE = /[\s,;:.)\]}>]/

/** Characters of a secret in a text, and how to turn them into the secret itself. */
interface Span {
  start: number
  end: number
  decode: (raw: string) => string
}

/** Remember a secret so that `redact` removes it wherever it appears. */
export function registerSecret(secret: string | undefined | null): void {
  // Very short strings would redact half of every message; a real password is longer.
  if (secret && secret.length >= 4) knownSecrets.add(secret)
}

/**
 * Register the passwords of a connection string as secrets: the URL's own, any `password` or
 * `sslpassword` query parameter, and any password of a keyword/value string. Each is registered
 * as written and decoded, so that it is removed wherever else it appears.
 */
export function registerUrlSecret(url: string | undefined): void {
  if (!url) return
  for (const span of secretSpans(url)) {
    const raw = url.slice(span.start, span.end)
    const decoded = span.decode(raw)
    registerSecret(raw)
    registerSecret(decoded)
    registerSecret(encodeURIComponent(decoded))
  }
  try {
    // The URL parser may write the password differently (e.g. an unencoded `@` as `%40`), and
    // this project prints URLs it has parsed: register that form too.
    const parsed = new URL(url)
    if (parsed.password) {
      registerSecret(parsed.password)
      registerSecret(decodeOrKeep(parsed.password))
    }
  } catch {
    // Not a URL (e.g. a bare database name, which graphile-migrate also accepts).
  }
}

for (const name of URL_ENV_VARS) registerUrlSecret(process.env[name])
registerSecret(process.env.PGPASSWORD)

/** Remove every password from `text`. */
export function redact(text: string): string {
  let out = ''
  let pos = 0
  for (const span of mergeSpans(secretSpans(text))) {
    out += text.slice(pos, span.start) + '***'
    pos = span.end
  }
  out += text.slice(pos)
  for (const secret of knownSecrets) out = out.split(secret).join('***')
  return out
}

/** A connection string safe to print. */
export function redactUrl(url: string): string {
  return redact(url)
}

/** Where each password that sits in a connection-string position of `text` is. */
function secretSpans(text: string): Span[] {
  const spans: Span[] = []
  // URLs first; the keyword/value search then skips their text, where `?password=` is handled.
  const urls: Array<{ start: number; end: number }> = []
  SCHEME.lastIndex = 0
  for (let m = SCHEME.exec(text); m; m = SCHEME.exec(text)) {
    const bodyStart = m.index + m[0].length
    const end = urlSpans(text, bodyStart, spans)
    urls.push({ start: m.index, end })
    SCHEME.lastIndex = Math.max(end, bodyStart)
  }
  KEYWORD.lastIndex = 0
  for (let m = KEYWORD.exec(text); m; m = KEYWORD.exec(text)) {
    const at = m.index
    if (urls.some((u) => at >= u.start && at < u.end)) continue
    const valueStart = at + m[0].length
    const inQuery = at > 0 && (text[at - 1] === '?' || text[at - 1] === '&')
    const span = inQuery
      ? { start: valueStart, end: valueEnd(text, valueStart, { stops: '&' }), decode: decodeOrKeep }
      : conninfoValue(text, valueStart)
    if (span.end > span.start) spans.push(span)
    KEYWORD.lastIndex = Math.max(span.end, valueStart)
  }
  return spans
}

/**
 * Find the password spans of the URL whose text after `scheme://` starts at `bodyStart`, add them
 * to `spans`, and return where the URL ends.
 */
function urlSpans(text: string, bodyStart: number, spans: Span[]): number {
  // A careful end first: also at a closing quote and before the next URL. If that cuts a
  // `user:password@` short (a quote or `://` inside the password), take all up to white space.
  const next = text.slice(bodyStart).search(/[a-z][a-z0-9+.-]*:\/\//i)
  const careful = Math.min(valueEnd(text, bodyStart, {}), next < 0 ? text.length : bodyStart + next)
  let end = careful
  let body = text.slice(bodyStart, end)
  const first = body.search(/[:/?#@]/)
  const hasPassword = first >= 0 && body[first] === ':'
  if (hasPassword && body.lastIndexOf('@') < first) {
    end = valueEnd(text, bodyStart, { quotes: false })
    body = text.slice(bodyStart, end)
  }
  let rest = 0
  const at = body.lastIndexOf('@')
  if (hasPassword && at > first) {
    // Everything between the user's `:` and the last `@` is the password, even if it holds
    // unencoded `@`, `:` or `/`.
    if (at > first + 1) spans.push({ start: bodyStart + first + 1, end: bodyStart + at, decode: decodeOrKeep })
    rest = at
  }
  const param = /[?&]([^=&]*)=([^&]*)/g
  param.lastIndex = rest
  for (let m = param.exec(body); m; m = param.exec(body)) {
    const value = m[2]!
    const valueAt = m.index + m[0].length - value.length
    if (value !== '' && SECRET_PARAMS.has(decodeOrKeep(m[1]!).toLowerCase())) {
      spans.push({ start: bodyStart + valueAt, end: bodyStart + valueAt + value.length, decode: decodeOrKeep })
    } else {
      // Look inside the value too, so that `?a=b?password=c` cannot hide a password.
      param.lastIndex = valueAt
    }
  }
  return end
}

/** The span of a keyword/value setting's value that starts at `start`: quoted or not. */
function conninfoValue(text: string, start: number): Span {
  const quote = text[start]
  if (quote === "'" || quote === '"') {
    let i = start + 1
    while (i < text.length && text[i] !== quote) i += text[i] === '\\' ? 2 : 1
    // An unterminated quote: hide the rest of the line.
    const end = i < text.length ? i + 1 : lineEnd(text, start)
    return { start, end: Math.min(end, text.length), decode: (raw) => unbackslash(raw.slice(1, raw.endsWith(quote) ? -1 : undefined)) }
  }
  return { start, end: valueEnd(text, start, { escapes: true }), decode: unbackslash }
}

/**
 * Where a value that starts at `from` ends: at white space, at one of `stops`, or (unless
 * `quotes` is false) at a quote mark followed by white space, punctuation or the end of the text.
 * With `escapes`, a backslash makes the next character part of the value (as libpq reads it).
 */
function valueEnd(text: string, from: number, options: { stops?: string; quotes?: boolean; escapes?: boolean }): number {
  const { stops = '', quotes = true, escapes = false } = options
  let i = from
  while (i < text.length) {
    const c = text[i]!
    if (/\s/.test(c) || stops.includes(c)) break
    if (escapes && c === '\\') {
      i = Math.min(i + 2, text.length)
      continue
    }
    if (quotes && QUOTES.includes(c) && (i + 1 === text.length || AFTER_CLOSING_QUOTE.test(text[i + 1]!))) break
    i++
  }
  return i
}

function lineEnd(text: string, from: number): number {
  const nl = text.indexOf('\n', from)
  return nl < 0 ? text.length : nl
}

/** Sort spans and join those that overlap, so that each character is replaced once. */
function mergeSpans(spans: Span[]): Span[] {
  const sorted = [...spans].sort((a, b) => a.start - b.start)
  const merged: Span[] = []
  for (const span of sorted) {
    const last = merged[merged.length - 1]
    if (last && span.start <= last.end) last.end = Math.max(last.end, span.end)
    else merged.push({ ...span })
  }
  return merged
}

function decodeOrKeep(raw: string): string {
  try {
    return decodeURIComponent(raw)
  } catch {
    return raw
  }
}

/** A keyword/value setting's value as libpq reads it: a backslash escapes the next character. */
function unbackslash(raw: string): string {
  return raw.replace(/\\(.)/gs, '$1')
}
