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

/** Explain common connection/privilege failures in words an operator can act on. */
export function explain(error: unknown): string {
  const e = (error ?? {}) as PgLikeError
  const message = e.message ?? String(error)
  switch (e.code) {
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
      return `The PostgreSQL server shut down or is starting up (${message}). Run the command again once it is back; completed work is kept.`
  }
  return message
}

/** Print `error` for a human and return the exit code to use. */
export function reportFatal(error: unknown, context = 'Error'): number {
  const text = error instanceof UserError ? error.message : explain(error)
  process.stderr.write(redact(`${context}: ${text}`) + '\n')
  if (process.env.DEBUG && error instanceof Error && error.stack) process.stderr.write(redact(error.stack) + '\n')
  return 1
}
