// TEMPORARY stub (owner): helper-2 replaces this file with the real hook runner.
export async function runHooks(_opts: { databaseUrl: string; shadow: boolean; dryRun?: boolean }): Promise<{ ok: boolean }> {
  return { ok: true }
}
export async function hookStatus(_url: string): Promise<{ clean: boolean; lines: string[] }> {
  return { clean: true, lines: [] }
}
