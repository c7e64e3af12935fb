// Redocly CLI (recommended) and Spectral (spectral:oas) on the document the service serves, run as a
// user runs them, with the committed rulesets: every problem they report is fixed or switched off there.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { build } from './support/app.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BIN = join(ROOT, 'node_modules', '.bin')
const RUN_TIMEOUT_MS = 60_000

// No network from a test: Redocly sends usage data and checks npm for a newer version unless told not to
// (Spectral's only call home is an install script, denied in package.json's allowScripts).
const CLI_ENV = {
  ...process.env,
  // The CLIs' `#!/usr/bin/env node` finds the Node running the tests, not an older one on PATH.
  PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`,
  REDOCLY_TELEMETRY: 'off',
  REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true',
  NO_COLOR: '1',
}

interface Problem {
  rule: string
  severity: string
  pointer: string
  message: string
}

interface Run {
  code: number
  stdout: string
  stderr: string
}

/** A CLI from node_modules/.bin in the project root, killed past RUN_TIMEOUT_MS. */
function run(cli: string, args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      join(BIN, cli),
      args,
      { cwd: ROOT, env: CLI_ENV, timeout: RUN_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error?.code === 'ENOENT') {
          reject(new Error(`${cli} is not in node_modules/.bin: run npm ci`))
        } else if (error && typeof error.code !== 'number') {
          const why = error.killed ? `killed after ${RUN_TIMEOUT_MS / 1000} s` : error.message
          reject(new Error(`${cli} did not finish (${why}):\n${stderr}`))
        } else {
          resolve({ code: error ? (error.code as number) : 0, stdout, stderr })
        }
      },
    )
  })
}

function parseReport(cli: string, { code, stdout, stderr }: Run): unknown {
  try {
    return JSON.parse(stdout)
  } catch {
    assert.fail(`${cli} exited ${code} without a JSON report:\n${stderr}${stdout}`)
  }
}

function assertNoProblems(cli: string, problems: Problem[]): void {
  const lines = problems.map((p) => `  ${p.severity} ${p.rule} at ${p.pointer}: ${p.message}`)
  assert.equal(problems.length, 0, `${cli} found ${problems.length} problems:\n${lines.join('\n')}`)
}

/** Spectral's path as a JSON pointer (RFC 6901), like Redocly's. */
function pointer(path: (string | number)[]): string {
  return '#' + path.map((key) => '/' + String(key).replaceAll('~', '~0').replaceAll('/', '~1')).join('')
}

const SPECTRAL_SEVERITIES = ['error', 'warn', 'info', 'hint']

test('Redocly and Spectral find nothing to fix in /openapi.json', { timeout: 4 * RUN_TIMEOUT_MS }, async (t) => {
  const app = await build(t)
  // Fetched as a deployment's caller would: a document whose servers name localhost is a Redocly warning.
  const res = await app.inject({ url: '/openapi.json', headers: { host: 'openai-tasks.internal.test' } })
  assert.equal(res.statusCode, 200)
  const dir = await mkdtemp(join(tmpdir(), 'openapi-lint-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const document = join(dir, 'openapi.json')
  await writeFile(document, res.body)

  await t.test('redocly lint, recommended rules (redocly.yaml)', async () => {
    const result = await run('redocly', [
      'lint',
      document,
      '--config',
      join(ROOT, 'redocly.yaml'),
      // A misspelt key in redocly.yaml fails the run instead of being skipped with a warning.
      '--lint-config',
      'error',
      '--format',
      'json',
      '--max-problems',
      '100000',
    ])
    const report = parseReport('redocly', result) as {
      totals: { ignored: number }
      problems: { ruleId: string; severity: string; message: string; location?: { pointer?: string }[] }[]
    }
    assertNoProblems(
      'redocly',
      report.problems.map((p) => ({
        rule: p.ruleId,
        severity: p.severity,
        pointer: p.location?.[0]?.pointer ?? '#',
        message: p.message,
      })),
    )
    assert.equal(
      report.totals.ignored,
      0,
      'no problem is hidden in an ignore file: switch its rule off in redocly.yaml',
    )
    assert.equal(result.code, 0, result.stderr)
  })

  await t.test('spectral lint, spectral:oas (.spectral.yaml)', async () => {
    const result = await run('spectral', [
      'lint',
      document,
      '--ruleset',
      join(ROOT, '.spectral.yaml'),
      '--format',
      'json',
      '--quiet',
    ])
    const report = parseReport('spectral', result) as {
      code: string
      severity: number
      path: (string | number)[]
      message: string
    }[]
    assertNoProblems(
      'spectral',
      report.map((p) => ({
        rule: p.code,
        severity: SPECTRAL_SEVERITIES[p.severity] ?? String(p.severity),
        pointer: pointer(p.path),
        message: p.message,
      })),
    )
    assert.equal(result.code, 0, result.stderr)
  })
})
