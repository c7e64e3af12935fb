// Regenerates the committed artifacts derived from schemas/ and src/: the OpenAPI document, the
// TypeScript task types, docs/configuration.md and docs/errors.md. `--check` only compares and
// exits 1 when a file is stale.
import { readFile, writeFile, mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import { renderArtifacts } from './artifacts.ts'

const check = process.argv.includes('--check')
let stale = 0
for (const { path, content } of await renderArtifacts()) {
  const current = await readFile(path, 'utf8').catch(() => '')
  if (current === content) continue
  if (check) {
    console.error(`stale: ${path} (run npm run generate)`)
    stale++
  } else {
    await mkdir(dirname(path), { recursive: true })
    await writeFile(path, content)
    console.log(`wrote ${path}`)
  }
}
process.exitCode = stale ? 1 : 0
