// Links in the Markdown files checked against the repository, so a moved page or heading fails here.
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SKIP = new Set(['node_modules', '.git', 'dist', 'test-artifacts', 'coverage'])

function files(dir: string, suffix: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return SKIP.has(entry.name) ? [] : files(path, suffix)
    return entry.name.endsWith(suffix) ? [path] : []
  })
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
function anchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[`*_]/g, '')
    .replace(/[^\p{L}\p{N} -]/gu, '')
    .replace(/ /g, '-')
}

function anchorsOf(markdown: string): Set<string> {
  const withoutCode = markdown.replace(/```[\s\S]*?```/g, '')
  return new Set([...withoutCode.matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchor(m[1]!)))
}

test('every relative link in the Markdown files leads to a file, and to a heading when it names one', () => {
  const broken: string[] = []
  for (const file of files(ROOT, '.md')) {
    const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '')
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/i.test(target!)) continue
      const [path, hash] = target!.split('#') as [string, string | undefined]
      const resolved = path ? join(dirname(file), decodeURIComponent(path)) : file
      const where = `${relative(ROOT, file)}: ${target}`
      if (!existsSync(resolved)) broken.push(`${where} (no such file)`)
      else if (
        hash &&
        statSync(resolved).isFile() &&
        resolved.endsWith('.md') &&
        !anchorsOf(readFileSync(resolved, 'utf8')).has(hash)
      ) {
        broken.push(`${where} (no such heading)`)
      }
    }
  }
  assert.deepEqual(broken, [])
})
