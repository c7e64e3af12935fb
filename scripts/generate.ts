// Regenerates the committed artifacts: from schemas/, the OpenAPI document and the TypeScript
// task types; from src/, docs/configuration.md and docs/errors.md; from OpenAI's openapi.yaml,
// the contract the test suite's stand-in checks. `--check` only compares and exits 1 when a
// file is stale.
import { readFile, writeFile, mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import { renderArtifacts } from './artifacts.ts'

const check = process.argv.includes('--check')
let stale = 0
for (const artifact of await renderArtifacts()) {
  const { path } = artifact
  if ('skipped' in artifact) {
    console.log(`skipped ${path}: ${artifact.skipped}`)
    continue
  }
  const current = await readFile(path, 'utf8').catch(() => '')
  if (current === artifact.content) continue
  if (check) {
    console.error(`stale: ${path} (run npm run generate)`)
    stale++
  } else {
    await mkdir(dirname(path), { recursive: true })
    await writeFile(path, artifact.content)
    console.log(`wrote ${path}`)
  }
}
process.exitCode = stale ? 1 : 0
