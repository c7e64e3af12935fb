// One Node.js major, said the same wherever the repository names it, so that an older Node is
// refused at install with the version instead of crashing later.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'

const read = (path: string): string => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8')
const major = read('.nvmrc').trim()

test('.nvmrc names a major version', () => {
  assert.match(major, /^\d+$/)
})

test('package.json requires it, and npm refuses an older Node', () => {
  const { engines } = JSON.parse(read('package.json')) as { engines?: { node?: string } }
  assert.equal(engines?.node, `>=${major}`)
  assert.match(read('.npmrc'), /^engine-strict=true$/m)
  const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { engines?: unknown }> }
  assert.deepEqual(lock.packages['']?.engines, engines, 'the lock file agrees (npm install --package-lock-only)')
})

test('the Dockerfile builds and runs on it', () => {
  const images = [...read('Dockerfile').matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]!)
  const node = images.filter((image) => image.startsWith('node:'))
  assert.ok(node.length > 0, 'node images')
  for (const image of node) assert.match(image, new RegExp(`^node:${major}(?:[-.]|$)`), image)
})

test('.ci/run provisions it on a machine with an older Node', () => {
  const run = read('.ci/run')
  assert.match(run, new RegExp(`-lt ${major}\\b`))
  assert.match(run, new RegExp(`\\bnode@${major}\\b`))
})
