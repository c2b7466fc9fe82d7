/**
 * Turning failures into one clear, password-free paragraph. A stack trace is printed only
 * with DEBUG set.
 */
import { redact } from './redact.js'

/** An error whose message is already written for the person running the command. */
export class UserError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'UserError'
  }
}

interface PgLikeError {
  code?: string
  message?: string
  errno?: number
  syscall?: string
  address?: string
  port?: number
}

/**
 * How `pg` reports a session that died under it (server restart, pg_terminate_backend, a
 * network failure): these errors carry no SQLSTATE, only a message.
 */
const CONNECTION_LOST =
  /Connection terminated|connection error and is not queryable|server closed the connection unexpectedly|read ECONNRESET|write EPIPE/i

const LOST = 'Run the command again once the server is reachable: committed work is kept, and interrupted work is redone or resumed.'

/** Explain common connection/privilege failures in words an operator can act on. */
export function explain(error: unknown): string {
  const e = (error ?? {}) as PgLikeError
  const message = e.message ?? String(error)
  if (!e.code && CONNECTION_LOST.test(message)) {
    return `The connection to PostgreSQL was lost (${message}): the server restarted or shut down, or an administrator or the network ended the session. ${LOST}`
  }
  switch (e.code) {
    case 'ECONNRESET':
    case 'EPIPE':
    case '08006':
    case '08003':
    case '57P02':
      return `The connection to PostgreSQL was lost (${message}). ${LOST}`
    case 'ECONNREFUSED':
      return `Could not connect to PostgreSQL at ${e.address ?? 'the configured host'}:${e.port ?? ''} (connection refused). Is the server running, and are host and port in DATABASE_URL right?`
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `Could not resolve the database host in DATABASE_URL (${message}). Check the host name.`
    case 'ETIMEDOUT':
      return `Timed out connecting to PostgreSQL (${message}). Check host, port and firewall.`
    case '28P01':
    case '28000':
      return `PostgreSQL rejected the credentials (${message}). Check the user and password in the connection string.`
    case '3D000':
      return `${message}. Create the database first, or fix the database name in the connection string.`
    case '42501':
      return `Permission denied (${message}). The role in the connection string lacks a privilege this step needs: run migrations as the database owner.`
    case '57P01':
    case '57P03':
      return `The PostgreSQL server shut down or is starting up, or an administrator ended the session (${message}). ${LOST}`
  }
  return message
}

/**
 * A line filter for the output of child processes. graphile-migrate prints a Node stack trace
 * and a dump of the pg error object under its one-line message, and a process that crashes
 * on an unhandled error prints Node's banner (the source line, a caret, "Node.js vXX").
 * All of that is dropped unless DEBUG is set; the error's own message line is kept.
 * Returns true for lines to keep.
 */
export function stackTraceFilter(debug = Boolean(process.env.DEBUG)): (line: string) => boolean {
  let inDump = false
  let inSource = false
  return (line) => {
    if (debug) return true
    if (inDump) {
      if (line === '}') inDump = false
      return false
    }
    if (inSource) {
      // Node's crash banner: `file:line`, the source line, a caret line, then a blank line.
      if (line.trim() === '') inSource = false
      return false
    }
    if (/^(node:[\w/]+|\/\S+|file:\/\/\S+):\d+$/.test(line)) {
      inSource = true
      return false
    }
    if (/^\s+at\s/.test(line)) {
      // The last frame of an error object with extra properties opens their dump: `… {`.
      if (line.trimEnd().endsWith('{')) inDump = true
      return false
    }
    if (/^\s+\[\.\.\. lines matching original stack trace \.\.\.\]$|^Emitted '\w+' event on .* at:$|^Node\.js v\d+/.test(line)) return false
    return true
  }
}

/** Print `error` for a human and return the exit code to use. */
export function reportFatal(error: unknown, context = 'Error'): number {
  const text = error instanceof UserError ? error.message : explain(error)
  process.stderr.write(redact(`${context}: ${text}`) + '\n')
  if (process.env.DEBUG && error instanceof Error && error.stack) process.stderr.write(redact(error.stack) + '\n')
  return 1
}
