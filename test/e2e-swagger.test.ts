/**
 * End to end through Swagger UI in a real headless Chromium (Debian's chromium on PATH, driven
 * by playwright-core; no browser download): the app listens on 127.0.0.1 in front of the
 * stand-in OpenAI, and the page at /docs runs two operations with their request body examples
 * the way a person would (expand, "Try it out", "Execute"). Screenshots of both operations go
 * to test-artifacts/. Without Chromium the test is skipped, except under CI where it must run.
 */
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core'
import { buildWithUpstream } from './support/app.ts'
import { findOnPath, needs } from './support/needs.ts'

const CHROMIUM = findOnPath('chromium')
const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url))
const STEP_TIMEOUT_MS = 15_000

const skip = needs('chromium', CHROMIUM !== undefined, 'apt-get install chromium')

/** Expands an operation, takes "Try it out" with the default example body, executes it; returns the operation block. */
async function execute(page: Page, operationId: string): Promise<Locator> {
  const op = page.locator(`#operations-tasks-${operationId}`)
  await op.locator('.opblock-summary-control').click()
  await op.locator('button.try-out__btn').click()
  await op.locator('.body-param textarea').waitFor()
  await op.locator('button.execute').click()
  await op.locator('.live-responses-table .response-col_status').first().waitFor()
  return op
}

/** The status and body Swagger UI rendered under "Server response". */
async function rendered(op: Locator): Promise<{ status: string; body: string }> {
  const row = op.locator('.live-responses-table tbody tr.response').first()
  const status = (await row.locator('.response-col_status').innerText()).trim()
  const body = await row.locator('.response-col_description').innerText()
  return { status, body }
}

test(
  'Swagger UI executes text-generation and text-to-speech with their examples',
  { skip, timeout: 60_000 },
  async (t) => {
    assert.ok(CHROMIUM, 'chromium is on PATH (CI is set)')
    // Registered before the app's own after hooks, which run in order and stop at the first that
    // throws: the browser is closed whatever happens, or its process would keep the test alive.
    const userDataDir = await mkdtemp(join(tmpdir(), 'openai-tasks-chromium-'))
    let context: BrowserContext | undefined
    t.after(async () => {
      try {
        await context?.close()
      } finally {
        await rm(userDataDir, { recursive: true, force: true })
      }
    })
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 900 },
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    })
    context.setDefaultTimeout(STEP_TIMEOUT_MS)

    const { app, upstream } = await buildWithUpstream(t)
    await app.listen({ host: '127.0.0.1', port: 0 })
    const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

    const problems: string[] = []
    const offHost: string[] = []
    context.on('request', (request) => {
      const url = new URL(request.url())
      if (url.protocol.startsWith('http') && url.origin !== origin) offHost.push(request.url())
    })
    const page = context.pages()[0] ?? (await context.newPage())
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') {
        problems.push(`console.${message.type()}: ${message.text()}`)
      }
    })
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))

    await page.goto(`${origin}/docs`)
    await page.locator('#operations-tasks-text-generation').waitFor()
    await mkdir(ARTIFACTS, { recursive: true })

    // text generation: the "simple" example goes through to POST /chat/completions
    const generation = await execute(page, 'text-generation')
    const generationShot = join(ARTIFACTS, 'swagger-text-generation.png')
    await generation.screenshot({ path: generationShot })
    const gen = await rendered(generation)
    assert.equal(gen.status, '200', gen.body)
    assert.match(gen.body, /"texts"/)
    const chats = upstream.requests.filter((r) => r.path === '/v1/chat/completions')
    assert.equal(chats.length, 1, 'the stand-in received one chat completion request')
    assert.equal(chats[0]!.json.model, 'gpt-4o-mini')
    assert.deepEqual(chats[0]!.json.messages.at(-1), { role: 'user', content: [{ type: 'text', text: 'Say hi' }] })

    // text to speech: the 200 answer is the JSON data URI, or (for an audio media type) a player / download link
    const speech = await execute(page, 'text-to-speech')
    const speechShot = join(ARTIFACTS, 'swagger-text-to-speech.png')
    await speech.screenshot({ path: speechShot })
    const tts = await rendered(speech)
    assert.equal(tts.status, '200', tts.body)
    const speeches = upstream.requests.filter((r) => r.path === '/v1/audio/speech')
    assert.equal(speeches.length, 1, 'the stand-in received one speech request')
    assert.deepEqual(speeches[0]!.json, { model: 'tts-1', input: 'Hello from openai-tasks.', voice: 'alloy' })
    const dataUri = /"audio": "data:audio\/mpeg;base64,([A-Za-z0-9+/]+={0,2})"/.exec(tts.body)
    if (dataUri) {
      assert.ok(
        Buffer.from(dataUri[1]!, 'base64').equals(speeches[0]!.responseBody!),
        "the data URI holds the stand-in's mp3 bytes",
      )
    } else {
      const player = speech
        .locator('.live-responses-table tbody tr.response')
        .first()
        .locator('audio source, a[download]')
      assert.ok(await player.count(), `an audio data URI, player or download link: ${tts.body.slice(0, 300)}`)
    }

    assert.deepEqual(offHost, [], 'the page loads nothing from outside the app')
    assert.deepEqual(problems, [], 'no errors or warnings in the browser console')
    t.diagnostic(`screenshots: ${generationShot}, ${speechShot}`)
  },
)
