#!/usr/bin/env node
/**
 * Why this exists: the npm registry mirror these machines use does not serve every
 * platform-specific optional package (e.g. @rollup/rollup-android-arm-eabi returns 404).
 * `npm install` then leaves those optional dependencies out of package-lock.json, and
 * `npm ci` refuses the lock as "not in sync" (Missing: … from lock file).
 *
 * This adds, for each optional dependency that has no lock entry, an entry marked optional
 * with the os/cpu its name declares, so `npm ci` knows to skip it on this platform. Run it
 * after any `npm install` that changes the lock:  node scripts/tools/complete-lockfile.mjs
 */
import { readFileSync, writeFileSync } from 'node:fs'

const OS = ['android', 'darwin', 'freebsd', 'linux', 'openbsd', 'openharmony', 'win32', 'sunos', 'aix', 'netbsd']
const CPU = ['arm64', 'arm', 'x64', 'ia32', 'loong64', 'ppc64', 'riscv64', 's390x', 'mips64el']

function platformOf(name) {
  const parts = name.split('/').pop().split('-')
  const os = parts.find((p) => OS.includes(p))
  const cpu = parts.find((p) => CPU.includes(p)) ?? (parts.includes('arm') ? 'arm' : undefined)
  return os && cpu ? { os: [os], cpu: [cpu] } : undefined
}

const file = process.argv[2] ?? 'package-lock.json'
const lock = JSON.parse(readFileSync(file, 'utf8'))
const added = []
for (const [path, entry] of Object.entries(lock.packages)) {
  for (const [dep, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const key = `node_modules/${dep}`
    const nested = path ? `${path}/node_modules/${dep}` : key
    if (lock.packages[key] || lock.packages[nested]) continue
    const platform = platformOf(dep)
    if (!platform) continue
    lock.packages[key] = { version, ...(entry.dev ? { dev: true } : {}), optional: true, ...platform }
    added.push(`${dep}@${version}`)
  }
}
lock.packages = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))))
writeFileSync(file, JSON.stringify(lock, null, 2) + '\n')
console.log(
  added.length
    ? `Added ${added.length} platform-specific optional entries:\n  ${added.join('\n  ')}`
    : 'package-lock.json already complete.',
)
