/**
 * Passwords must never reach a terminal or a log file. Everything this project prints that
 * could contain a connection string goes through `redact()`.
 *
 * Two layers:
 *  1. any `scheme://user:password@host` in the text has its password replaced by `***`;
 *  2. every password we know about (from the URL environment variables or registered at run
 *     time, e.g. the embedded server's generated one) is replaced wherever it appears, because
 *     tools such as `pg` sometimes echo a password outside of a URL.
 */

const knownSecrets = new Set<string>()

const URL_ENV_VARS = ['DATABASE_URL', 'SHADOW_DATABASE_URL', 'ROOT_DATABASE_URL', 'GM_DBURL', 'TEST_DATABASE_URL']

/** Remember a secret so that `redact` removes it wherever it appears. */
export function registerSecret(secret: string | undefined | null): void {
  // Very short strings would redact half of every message; a real password is longer.
  if (secret && secret.length >= 4) knownSecrets.add(secret)
}

/** Register the password of a connection string as a secret. */
export function registerUrlSecret(url: string | undefined): void {
  if (!url) return
  try {
    const parsed = new URL(url)
    if (parsed.password) {
      registerSecret(parsed.password)
      registerSecret(decodeURIComponent(parsed.password))
    }
  } catch {
    // Not a URL (e.g. a bare database name, which graphile-migrate also accepts): nothing to hide.
  }
}

for (const name of URL_ENV_VARS) registerUrlSecret(process.env[name])
registerSecret(process.env.PGPASSWORD)

const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)([^@\s]*)@/gi

/** Remove every password from `text`. */
export function redact(text: string): string {
  let out = text.replace(URL_PASSWORD, '$1***@')
  for (const secret of knownSecrets) out = out.split(secret).join('***')
  return out
}

/** A connection string safe to print. */
export function redactUrl(url: string): string {
  return redact(url)
}
