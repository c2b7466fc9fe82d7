/** squawk guards new migrations: a write-blocking index build fails the lint, the concurrent pattern passes. */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { projectCopy } from '../helpers/project.js'
import { lint } from '../../scripts/lint/squawk.js'

describe('squawk lint', () => {
  it('passes the committed chain with its written waivers', async () => {
    const r = await lint(join(projectCopy(), 'migrations'))
    expect(r.output).toBe('')
    expect(r.ok).toBe(true)
  })

  it('fails a new migration that blocks writes, passes the concurrent pattern', async () => {
    const dir = projectCopy()
    writeFileSync(join(dir, 'migrations', 'current.sql'), 'create index idx_api_requests_error on api_requests (error);\n')
    const bad = await lint(join(dir, 'migrations'))
    expect(bad.ok).toBe(false)
    expect(bad.output).toMatch(/require-concurrent-index-creation/)

    writeFileSync(
      join(dir, 'migrations', 'current.sql'),
      '--! no-transaction\ncreate index concurrently if not exists idx_api_requests_error on api_requests (error);\n',
    )
    const good = await lint(join(dir, 'migrations'))
    expect(good.output).toBe('')
    expect(good.ok).toBe(true)
  })
})
