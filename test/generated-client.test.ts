import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { basename } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import openapiTS, { astToString } from 'openapi-typescript'
import ts from 'typescript'
import { serveWithUpstream, TEST_API_KEY } from './support/app.ts'
import { expectedSpeechBytes, type RecordedRequest } from './support/fake-openai/index.ts'

/**
 * The served OpenAPI document as a caller's tooling sees it (issue 24): openapi-typescript generates
 * its types, the project's compiler checks test/client/use-generated-client.ts (every task, a batch,
 * an error and a media answer through openapi-fetch, with no cast) against them, and the script runs
 * against the service and the stand-in OpenAI.
 */

const ROOT = new URL('../', import.meta.url)
/** Where the generated types go; the script imports them from there (gitignored). */
const OUT = new URL('test-artifacts/generated-client/', ROOT)
const SCRIPT = fileURLToPath(new URL('test/client/use-generated-client.ts', ROOT))
/** The compiler `npm run typecheck` runs (`tsc`). */
const TSC = fileURLToPath(new URL('node_modules/@typescript/native/bin/tsc', ROOT))
const TOKEN = 'generated-client-service-token'

/** What a caller who switched on the error code with a typo would write: the compiler must refuse it. */
const MISSPELLED_CODE = `import createClient from 'openapi-fetch'
import type { paths } from './openapi.ts'

const client = createClient<paths, 'application/json'>({ baseUrl: 'http://127.0.0.1:1' })
export async function misspelled(): Promise<boolean> {
  const { error } = await client.POST('/v1/tasks/text-embeddings', { body: { model: 'm', text: '' } })
  switch (error?.error.code) {
    case 'ERR_VALIDATOIN':
      return true
    default:
      return false
  }
}
`

/** The document's file parts (`format: binary`) as Blob, openapi-typescript's documented recipe for uploads. */
const BLOB = ts.factory.createTypeReferenceNode('Blob')

async function generateTypes(document: string): Promise<string> {
  const ast = await openapiTS(document, {
    silent: true,
    // Inputs shared by a route and its batch are components, where a field with a default would become required.
    defaultNonNullable: false,
    transform: (schema) => (schema.format === 'binary' ? BLOB : undefined),
  })
  return astToString(ast)
}

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs a Node script to its end; asynchronous, because the service it calls lives in this process. */
function runNode(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr })
    })
  })
}

interface Diagnostic {
  file: string
  line: number
  code: string
  message: string
}

/** tsc's `--pretty false` output as one entry per error (continuation lines joined). */
function diagnostics(output: string): Diagnostic[] {
  const found: Diagnostic[] = []
  for (const line of output.split('\n')) {
    const m = /^(.+?)\((\d+),\d+\): error (TS\d+): (.*)$/.exec(line)
    if (m) found.push({ file: basename(m[1]!), line: Number(m[2]), code: m[3]!, message: m[4]! })
    else if (line.trim() && found.length) found[found.length - 1]!.message += ' ' + line.trim()
  }
  return found
}

/** The body the stand-in answered a request with, parsed. */
const answered = (request: RecordedRequest | undefined): any => JSON.parse(String(request?.responseBody))

test('a client generated from the served document compiles without casts and gets what the service answers', async (t) => {
  // No load shedding: generating the types blocks this process's event loop, which is the service's too.
  const { base, upstream } = await serveWithUpstream(t, { SERVICE_TOKENS: TOKEN, MAX_EVENT_LOOP_DELAY_MS: '0' })

  const served = await fetch(`${base}/openapi.json`)
  assert.equal(served.status, 200)
  await mkdir(OUT, { recursive: true })
  await writeFile(new URL('openapi.ts', OUT), await generateTypes(await served.text()))
  await writeFile(new URL('misspelled-code.ts', OUT), MISSPELLED_CODE)
  // The project's compiler options (strict, noUncheckedIndexedAccess...), on these two files only.
  const tsconfig = { extends: '../../tsconfig.json', include: [], files: [SCRIPT, 'misspelled-code.ts'] }
  await writeFile(new URL('tsconfig.json', OUT), JSON.stringify(tsconfig, null, 2))

  const tsc = await runNode([TSC, '-p', fileURLToPath(new URL('tsconfig.json', OUT)), '--pretty', 'false'])
  const errors = diagnostics(tsc.stdout)

  await t.test('the script type-checks against the generated types', () => {
    assert.deepEqual(
      errors.filter((e) => e.file === basename(SCRIPT)),
      [],
    )
    assert.deepEqual(
      errors.filter((e) => e.file !== basename(SCRIPT) && e.file !== 'misspelled-code.ts'),
      [],
      'no error elsewhere (the generated types themselves)',
    )
  })

  await t.test('a misspelled error code does not type-check', () => {
    const snippet = errors.filter((e) => e.file === 'misspelled-code.ts')
    assert.equal(snippet.length, 1, `one error in the snippet: ${JSON.stringify(snippet)}`)
    assert.equal(snippet[0]?.code, 'TS2678', 'the case is not comparable to the code')
    assert.match(String(snippet[0]?.message), /ERR_VALIDATOIN/)
  })

  await t.test('the script runs against the service and gets what the stand-in answered', async () => {
    const run = await runNode([SCRIPT, base, TOKEN])
    assert.equal(run.stderr, '')
    const lines = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
    assert.deepEqual(
      lines.filter((line) => line.failed.length),
      [],
      'every call passed its own checks',
    )
    assert.equal(run.code, 0)
    const got = new Map(lines.map((line) => [line.call, line]))
    assert.deepEqual(
      [...got.keys()],
      [
        'text-generation',
        'text-embeddings',
        'speech-recognition',
        'text-to-speech',
        'text-to-speech audio',
        'text-to-image',
        'text-embeddings batch',
        'error',
        'catalogue',
      ],
    )

    // The calls that reach OpenAI, in order, with the server's key and never the caller's token.
    const calls = upstream.requests
    assert.deepEqual(
      calls.map((r) => r.path),
      [
        '/v1/chat/completions',
        '/v1/embeddings',
        '/v1/audio/transcriptions',
        '/v1/audio/speech',
        '/v1/audio/speech',
        '/v1/images/generations',
        '/v1/embeddings',
      ],
    )
    for (const call of calls) assert.equal(call.headers.authorization, `Bearer ${TEST_API_KEY}`)
    const [chat, embedding, transcription, speech, speechAudio, image, batch] = calls

    assert.match(JSON.stringify(chat?.json.messages), /"Say hi"/)
    assert.equal(got.get('text-generation').text, answered(chat).choices[0].message.content)

    assert.equal(embedding?.json.dimensions, 256)
    assert.equal(got.get('text-embeddings').length, 256)

    // The multipart body reached OpenAI as a file part, its bytes intact (named by their format).
    assert.equal(transcription?.form?.fields.model, 'whisper-1')
    assert.equal(transcription?.form?.files.file?.filename, 'audio.wav')
    assert.equal(transcription?.form?.files.file?.data.subarray(0, 4).toString('latin1'), 'RIFF')
    assert.equal(transcription?.form?.files.file?.data.length, 44)
    assert.equal(got.get('speech-recognition').text, answered(transcription).text)

    const mp3 = expectedSpeechBytes(speech?.json)
    assert.deepEqual(got.get('text-to-speech'), {
      call: 'text-to-speech',
      prefix: 'data:audio/mpeg;base64,',
      length: 'data:audio/mpeg;base64,'.length + mp3.toString('base64').length,
      failed: [],
    })
    const audio = expectedSpeechBytes(speechAudio?.json)
    assert.deepEqual(got.get('text-to-speech audio'), {
      call: 'text-to-speech audio',
      type: 'audio/mpeg',
      bytes: audio.length,
      sha256: createHash('sha256').update(audio).digest('hex'),
      failed: [],
    })

    assert.equal(got.get('text-to-image').revisedPrompt, answered(image).data[0].revised_prompt)
    assert.equal(got.get('text-to-image').image, 'data:image/webp;base64,')

    // Only the valid item of the batch reached OpenAI; the other was refused alone.
    assert.deepEqual([batch?.json.input, batch?.json.dimensions], [['one'], 8])
    assert.deepEqual(got.get('text-embeddings batch').outputs, [{ length: 8 }, { code: 'ERR_VALIDATION', status: 400 }])

    assert.deepEqual(got.get('error'), {
      call: 'error',
      status: 400,
      code: 'ERR_VALIDATION',
      fields: ['text'],
      failed: [],
    })
    assert.deepEqual(got.get('catalogue').names, [
      'text-generation',
      'text-embeddings',
      'speech-recognition',
      'text-to-speech',
      'text-to-image',
    ])
  })
})
