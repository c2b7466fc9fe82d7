/**
 * A private embedded server for one test file (.data/<name>): for drills that restart the
 * server, or read its log, which the shared test server's other users must not feel or
 * write into. Started before the file's tests and stopped after them; the file's databases
 * (createTestDatabases) go there meanwhile. Only when the tests use the embedded server: with
 * TEST_ROOT_DATABASE_URL the embedded binaries may be absent, and `enabled` is false.
 */
import { resolve } from 'node:path'
import { afterAll, beforeAll, inject } from 'vitest'
import { ensureEmbeddedServer, stopEmbeddedServer } from '../../scripts/embedded/embedded-server.js'
import { dropTestDatabases, useServer } from './databases.js'
import { PROJECT_ROOT } from './project.js'

export function usePrivateEmbeddedServer(name: string): { enabled: boolean; dataRoot: string } {
  const dataRoot = resolve(PROJECT_ROOT, '.data', name)
  const enabled = inject('embeddedDataRoot') !== null
  if (enabled) {
    beforeAll(async () => {
      useServer((await ensureEmbeddedServer(dataRoot)).url('postgres'))
    }, 180_000)
    afterAll(async () => {
      await dropTestDatabases()
      useServer(undefined)
      stopEmbeddedServer(dataRoot)
    }, 180_000)
  }
  return { enabled, dataRoot }
}
