// A caller's script: every task through openapi-fetch, typed only by what the served document generated.
// Run by test/generated-client.test.ts, which generates the types, type-checks this file and runs it.
import { createHash } from 'node:crypto'
import createClient from 'openapi-fetch'
import type { paths } from '../../test-artifacts/generated-client/openapi.ts'

type EmbeddingsInput = paths['/v1/tasks/text-embeddings']['post']['requestBody']['content']['application/json']

const [base, token] = process.argv.slice(2)
if (!base || !token) {
  console.error('usage: node use-generated-client.ts <base URL> <service token>')
  process.exit(2)
}

// JSON answers only: a route's media types are asked for with `parseAs` where wanted.
const client = createClient<paths, 'application/json'>({
  baseUrl: base,
  headers: { authorization: `Bearer ${token}` },
})

/** Prints what a call got, with the checks it failed; any failure makes the exit code 1. */
function report(call: string, got: Record<string, unknown>, checks: Record<string, boolean>): void {
  const failed = Object.keys(checks).filter((check) => !checks[check])
  console.log(JSON.stringify({ call, ...got, failed }))
  if (failed.length) process.exitCode = 1
}

/** A call that answered an error where it should not have. */
function unexpected(call: string, response: Response, error: unknown): void {
  report(call, { status: response.status, error }, { 'answered 2xx': false })
}

/** A 44-byte WAV header with no samples: enough audio for the stand-in to transcribe. */
function silentWav(): Uint8Array<ArrayBuffer> {
  const wav = Buffer.alloc(44)
  wav.write('RIFF', 0, 'ascii')
  wav.writeUInt32LE(36, 4)
  wav.write('WAVEfmt ', 8, 'ascii')
  wav.writeUInt32LE(16, 16)
  wav.writeUInt16LE(1, 20) // PCM
  wav.writeUInt16LE(1, 22) // mono
  wav.writeUInt32LE(16000, 24)
  wav.writeUInt32LE(32000, 28)
  wav.writeUInt16LE(2, 32)
  wav.writeUInt16LE(16, 34)
  wav.write('data', 36, 'ascii')
  return new Uint8Array(wav)
}

async function textGeneration(): Promise<void> {
  const { data, error, response } = await client.POST('/v1/tasks/text-generation', {
    body: { model: 'gpt-4o-mini', prompt: 'Say hi' },
  })
  if (!data) return unexpected('text-generation', response, error)
  const text = data.texts[0]
  report('text-generation', { text }, { 'one text': data.texts.length === 1 && typeof text === 'string' })
}

async function textEmbeddings(): Promise<void> {
  const { data, error, response } = await client.POST('/v1/tasks/text-embeddings', {
    body: { model: 'text-embedding-3-small', text: 'The quick brown fox', dimensions: 256 },
  })
  if (!data) return unexpected('text-embeddings', response, error)
  const length = data.embedding.length
  report('text-embeddings', { length }, { 'as many numbers as dimensions': length === 256 })
}

async function speechRecognition(): Promise<void> {
  const { data, error, response } = await client.POST('/v1/tasks/speech-recognition', {
    body: { model: 'whisper-1', audio: new Blob([silentWav()], { type: 'audio/wav' }) },
    // The document's multipart body, as a form: the file part and the text parts.
    bodySerializer(body) {
      const form = new FormData()
      form.append('model', body.model)
      form.append('audio', body.audio, 'silence.wav')
      return form
    },
  })
  if (!data) return unexpected('speech-recognition', response, error)
  report('speech-recognition', { text: data.text }, { 'a transcript': data.text.length > 0 })
}

async function textToSpeech(): Promise<void> {
  const { data, error, response } = await client.POST('/v1/tasks/text-to-speech', {
    body: { model: 'tts-1', text: 'Hello!', voice: 'alloy' },
  })
  if (!data) return unexpected('text-to-speech', response, error)
  const prefix = data.audio.slice(0, data.audio.indexOf(',') + 1)
  report(
    'text-to-speech',
    { prefix, length: data.audio.length },
    { 'an mp3 data URI': prefix === 'data:audio/mpeg;base64,' },
  )
}

async function textToSpeechAudio(): Promise<void> {
  const { data, error, response } = await client.POST('/v1/tasks/text-to-speech', {
    body: { model: 'tts-1', text: 'Hello!', voice: 'alloy' },
    headers: { accept: 'audio/mpeg' },
    parseAs: 'arrayBuffer',
  })
  if (!data) return unexpected('text-to-speech audio', response, error)
  const type = response.headers.get('content-type')
  const sha256 = createHash('sha256').update(new Uint8Array(data)).digest('hex')
  report(
    'text-to-speech audio',
    { type, bytes: data.byteLength, sha256 },
    {
      'audio/mpeg': type === 'audio/mpeg',
      'some bytes': data.byteLength > 0,
    },
  )
}

async function textToImage(): Promise<void> {
  const { data, error, response } = await client.POST('/v1/tasks/text-to-image', {
    body: { model: 'dall-e-3', prompt: 'A cute baby wombat', size: '1024x1024' },
  })
  if (!data) return unexpected('text-to-image', response, error)
  const first = data.results[0]
  if (!first) return report('text-to-image', { results: 0 }, { 'one image': false })
  const image = first.image.slice(0, first.image.indexOf(',') + 1)
  const revisedPrompt = first['revised-prompt']
  report(
    'text-to-image',
    { results: data.results.length, image, revisedPrompt },
    {
      'one image': data.results.length === 1,
      'a WebP data URI': image === 'data:image/webp;base64,',
      'a revised prompt': revisedPrompt.length > 0,
    },
  )
}

async function embeddingsBatch(): Promise<void> {
  const inputs: EmbeddingsInput[] = [
    { model: 'text-embedding-3-small', text: 'one', dimensions: 8 },
    { model: 'text-embedding-3-small', text: 'two', dimensions: 0 },
  ]
  const { data, error, response } = await client.POST('/v1/tasks/text-embeddings/batch', { body: { inputs } })
  if (!data) return unexpected('text-embeddings batch', response, error)
  const outputs = data.outputs.map((item) =>
    'error' in item ? { code: item.error.code, status: item.error.status } : { length: item.embedding.length },
  )
  const [first, second] = data.outputs
  report(
    'text-embeddings batch',
    { outputs },
    {
      'one output per input': outputs.length === inputs.length,
      'the first embedded': first !== undefined && !('error' in first) && first.embedding.length === 8,
      'the second refused': second !== undefined && 'error' in second && second.error.code === 'ERR_VALIDATION',
    },
  )
}

async function invalidBody(): Promise<void> {
  const { data, error, response } = await client.POST('/v1/tasks/text-embeddings', {
    body: { model: 'text-embedding-3-small', text: '' },
  })
  if (data) return report('error', { status: response.status }, { refused: false })
  let known: boolean
  switch (error.error.code) {
    case 'ERR_VALIDATION':
      known = true
      break
    default:
      known = false
  }
  const fields = (error.error.details ?? []).map((detail) => detail.field)
  report(
    'error',
    { status: response.status, code: error.error.code, fields },
    {
      'a 400': response.status === 400,
      ERR_VALIDATION: known,
    },
  )
}

async function catalogue(): Promise<void> {
  const { data, error, response } = await client.GET('/v1/tasks')
  if (!data) return unexpected('catalogue', response, error)
  const names: string[] = data.tasks.map((task) => task.name)
  report('catalogue', { names }, { 'five tasks': names.length === 5 })
}

// One after another, so the stand-in records the calls in this order.
await textGeneration()
await textEmbeddings()
await speechRecognition()
await textToSpeech()
await textToSpeechAudio()
await textToImage()
await embeddingsBatch()
await invalidBody()
await catalogue()
