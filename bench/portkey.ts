/**
 * Portkey's AI gateway from npm, installed on first use into a cache folder (never into this
 * project), with @hono/node-server held at 1.13: with the 1.19 that 1.15.2 resolves to, every
 * streamed answer fails ("TypeError: immutable" appending headers to the upstream's Response).
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ROOT } from './processes.ts'

const VERSION = '1.15.2'
const DIR = process.env.BENCH_PORTKEY_DIR ?? join(ROOT, 'node_modules', '.cache', 'bench-portkey')
const ENTRY = join(DIR, 'node_modules', '@portkey-ai', 'gateway', 'build', 'start-server.js')

/** The gateway's start script, or why there is none. */
export async function portkeyEntry(): Promise<{ entry: string; version: string } | { error: string }> {
  if (process.env.BENCH_PORTKEY === '0') return { error: 'skipped (BENCH_PORTKEY=0)' }
  if (existsSync(ENTRY)) return { entry: ENTRY, version: VERSION }
  mkdirSync(DIR, { recursive: true })
  const manifest = {
    private: true,
    dependencies: { '@portkey-ai/gateway': VERSION },
    overrides: { '@hono/node-server': '1.13.8' },
  }
  writeFileSync(join(DIR, 'package.json'), JSON.stringify(manifest))
  try {
    await promisify(execFile)('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund'], {
      cwd: DIR,
      timeout: 180_000,
    })
  } catch (err) {
    return { error: `npm install @portkey-ai/gateway@${VERSION} failed: ${(err as Error).message.split('\n')[0]}` }
  }
  return existsSync(ENTRY) ? { entry: ENTRY, version: VERSION } : { error: `installed, but ${ENTRY} is missing` }
}
