// docs/errors.md is generated from ERROR_CODES: a code answered but not registered would be missing.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { ERROR_CODES } from '../src/errors.ts'

const SRC = fileURLToPath(new URL('../src/', import.meta.url))

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    return entry.isDirectory() ? sources(path) : entry.name.endsWith('.ts') ? [path] : []
  })
}

test('every error code in src/ is in ERROR_CODES, and every code there is used', () => {
  const registered = new Set(Object.keys(ERROR_CODES))
  const used = new Set<string>()
  for (const file of sources(SRC)) {
    for (const [, code] of readFileSync(file, 'utf8').matchAll(/'(ERR_[A-Z0-9_]+)'/g)) used.add(code!)
  }
  assert.deepEqual(
    [...used].filter((code) => !registered.has(code)),
    [],
    'codes missing from ERROR_CODES',
  )
  assert.deepEqual(
    [...registered].filter((code) => !used.has(code)),
    [],
    'codes nothing answers with',
  )
})
