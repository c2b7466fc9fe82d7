/**
 * One PostgreSQL server for the whole test run. With TEST_ROOT_DATABASE_URL (a superuser
 * connection to a maintenance database) the tests use that server; otherwise they start the
 * embedded PostgreSQL 15 in .data/test-embedded (separate from the development server in
 * .data/embedded, so tests never touch your data) and stop it afterwards if they started it.
 */
import { resolve } from 'node:path'
import type { TestProject } from 'vitest/node'
import { embeddedServerRunning, ensureEmbeddedServer, stopEmbeddedServer } from '../../scripts/lifecycle/embedded-server.js'

export const TEST_DATA_ROOT = resolve(import.meta.dirname, '..', '..', '.data', 'test-embedded')

declare module 'vitest' {
  export interface ProvidedContext {
    rootUrl: string
    embeddedDataRoot: string | null
  }
}

export default async function setup(project: TestProject) {
  const given = process.env.TEST_ROOT_DATABASE_URL
  if (given) {
    project.provide('rootUrl', given)
    project.provide('embeddedDataRoot', null)
    return
  }
  const wasRunning = embeddedServerRunning(TEST_DATA_ROOT)
  const server = await ensureEmbeddedServer(TEST_DATA_ROOT)
  project.provide('rootUrl', server.url('postgres'))
  project.provide('embeddedDataRoot', TEST_DATA_ROOT)
  return () => {
    if (!wasRunning || process.env.CI) stopEmbeddedServer(TEST_DATA_ROOT)
  }
}
