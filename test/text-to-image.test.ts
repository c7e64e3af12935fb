import assert from 'node:assert/strict'
import { test } from 'node:test'
import sharp from 'sharp'
import { buildWithUpstream } from './support/app.ts'

const URL = '/v1/tasks/text-to-image'
const PROMPT = 'A cute baby wombat in the style of a watercolour.'

interface Result {
  image: string
  'revised-prompt': string
}

/** Decodes a `data:image/webp;base64,` URI and checks the bytes really are a WebP of the stand-in's size. */
async function assertWebpLike(image: string, png: Buffer): Promise<void> {
  const prefix = 'data:image/webp;base64,'
  assert.ok(image.startsWith(prefix), image.slice(0, 40))
  const webp = Buffer.from(image.slice(prefix.length), 'base64')
  const meta = await sharp(webp).metadata()
  const original = await sharp(png).metadata()
  assert.equal(meta.format, 'webp')
  assert.equal(meta.width, original.width)
  assert.equal(meta.height, original.height)
}

/** The `data` items the stand-in answered with. */
function answered(body: Buffer | undefined): Array<{ b64_json?: string; revised_prompt?: string }> {
  return JSON.parse(String(body)).data
}

function paths(res: { json(): any }): string[] {
  return res.json().error.details.map((d: { path: string }) => d.path)
}

test('defaults to dall-e-2 and turns the base64 PNG into a WebP data URI', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const res = await app.inject({ method: 'POST', url: URL, payload: { prompt: PROMPT } })

  assert.equal(res.statusCode, 200, res.body)
  assert.equal(upstream.requests.length, 1)
  const sent = upstream.requests[0]!
  assert.equal(sent.path, '/v1/images/generations')
  assert.deepEqual(sent.json, {
    model: 'dall-e-2',
    prompt: PROMPT,
    response_format: 'b64_json',
  })
  assert.equal(answered(sent.responseBody)[0]!.b64_json, upstream.png.toString('base64'))

  const { results } = res.json() as { results: Result[] }
  assert.equal(results.length, 1)
  await assertWebpLike(results[0]!.image, upstream.png)
  assert.equal(results[0]!['revised-prompt'], '')
})

test('dall-e-3 sends quality, style and size, and returns the revised prompt', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const payload = { model: 'dall-e-3', prompt: PROMPT, quality: 'hd', style: 'natural', size: '1792x1024' }
  const res = await app.inject({ method: 'POST', url: URL, payload })

  assert.equal(res.statusCode, 200, res.body)
  const sent = upstream.requests[0]!
  assert.deepEqual(sent.json, {
    model: 'dall-e-3',
    prompt: PROMPT,
    size: '1792x1024',
    quality: 'hd',
    style: 'natural',
    response_format: 'b64_json',
  })
  const revised = answered(sent.responseBody)[0]!.revised_prompt
  assert.ok(revised)
  const { results } = res.json() as { results: Result[] }
  assert.equal(results.length, 1)
  assert.equal(results[0]!['revised-prompt'], revised)
  await assertWebpLike(results[0]!.image, upstream.png)
})

test('n=3 gives three WebP results', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const res = await app.inject({ method: 'POST', url: URL, payload: { model: 'dall-e-2', prompt: PROMPT, n: 3, size: '256x256' } })

  assert.equal(res.statusCode, 200, res.body)
  assert.deepEqual(upstream.requests[0]!.json, {
    model: 'dall-e-2',
    prompt: PROMPT,
    n: 3,
    size: '256x256',
    response_format: 'b64_json',
  })
  const { results } = res.json() as { results: Result[] }
  assert.equal(results.length, 3)
  for (const result of results) {
    await assertWebpLike(result.image, upstream.png)
    assert.equal(result['revised-prompt'], '')
  }
})

test('gpt-image-1 is sent without response_format', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const res = await app.inject({ method: 'POST', url: URL, payload: { model: 'gpt-image-1', prompt: PROMPT } })

  assert.equal(res.statusCode, 200, res.body)
  assert.deepEqual(upstream.requests[0]!.json, { model: 'gpt-image-1', prompt: PROMPT })
  const { results } = res.json() as { results: Result[] }
  assert.equal(results.length, 1)
  await assertWebpLike(results[0]!.image, upstream.png)
})

test('prompts exactly at the model\'s limit are accepted', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const cases: Array<[model: string | undefined, length: number]> = [
    [undefined, 1000],
    ['dall-e-2', 1000],
    ['dall-e-3', 4000],
    ['gpt-image-1', 4001],
  ]
  for (const [model, length] of cases) {
    upstream.reset()
    const prompt = 'w'.repeat(length)
    const res = await app.inject({ method: 'POST', url: URL, payload: { ...(model && { model }), prompt } })
    assert.equal(res.statusCode, 200, `${model} ${length}: ${res.body.slice(0, 300)}`)
    assert.equal(upstream.requests[0]!.json.prompt, prompt)
  }
})

test('the spec\'s settings rules are a 400 naming the field, with no upstream call', async (t) => {
  const cases: Array<[name: string, payload: object, path: string]> = [
    ['dall-e-3 with n=2', { model: 'dall-e-3', prompt: PROMPT, n: 2 }, '/n'],
    ['dall-e-3 with 256x256', { model: 'dall-e-3', prompt: PROMPT, size: '256x256' }, '/size'],
    ['dall-e-3 with 512x512', { model: 'dall-e-3', prompt: PROMPT, size: '512x512' }, '/size'],
    ['dall-e-2 with 1792x1024', { model: 'dall-e-2', prompt: PROMPT, size: '1792x1024' }, '/size'],
    ['default model with 1024x1792', { prompt: PROMPT, size: '1024x1792' }, '/size'],
    ['dall-e-2 with style', { model: 'dall-e-2', prompt: PROMPT, style: 'vivid' }, '/style'],
    ['default model with style', { prompt: PROMPT, style: 'natural' }, '/style'],
    ['dall-e-2 with quality hd', { model: 'dall-e-2', prompt: PROMPT, quality: 'hd' }, '/quality'],
    ['dall-e-2 with 1001 characters', { model: 'dall-e-2', prompt: 'w'.repeat(1001) }, '/prompt'],
    ['default model with 1001 characters', { prompt: 'w'.repeat(1001) }, '/prompt'],
    ['dall-e-3 with 4001 characters', { model: 'dall-e-3', prompt: 'w'.repeat(4001) }, '/prompt'],
    ['n=0', { prompt: PROMPT, n: 0 }, '/n'],
    ['n=11', { prompt: PROMPT, n: 11 }, '/n'],
    ['an unknown size', { prompt: PROMPT, size: '100x100' }, '/size'],
    ['empty prompt', { prompt: '' }, '/prompt'],
    ['no prompt', { model: 'dall-e-2' }, '/prompt'],
    ['another task id', { task: 'TASK_TEXT_GENERATION', prompt: PROMPT }, '/task'],
  ]
  const { app, upstream } = await buildWithUpstream(t)
  for (const [name, payload, path] of cases) {
    const res = await app.inject({ method: 'POST', url: URL, payload })
    assert.equal(res.statusCode, 400, `${name}: ${res.body.slice(0, 300)}`)
    assert.equal(res.json().error.code, 'ERR_VALIDATION', name)
    assert.ok(paths(res).includes(path), `${name}: ${JSON.stringify(res.json().error.details)}`)
  }
  assert.equal(upstream.requests.length, 0)
})

test('the task field is accepted when it names this task', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const res = await app.inject({ method: 'POST', url: URL, payload: { task: 'TASK_TEXT_TO_IMAGE', prompt: PROMPT } })
  assert.equal(res.statusCode, 200, res.body)
  assert.equal(upstream.requests.length, 1)
})

test('the PicassoAI recipe\'s openai-0 input is accepted as written', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  // The recipe's input block, with ${variable.colour} and ${mistral-0.output.text} filled in.
  const payload = {
    model: 'dall-e-3',
    n: 1,
    prompt:
      'Using this primary color palette: blue\n\n' +
      'Create an image in the style of Picasso\'s Blue period: a cute baby wombat, fractured into cubist planes',
    quality: 'standard',
    size: '1024x1024',
    style: 'vivid',
  }
  const res = await app.inject({ method: 'POST', url: URL, payload })

  assert.equal(res.statusCode, 200, res.body)
  assert.deepEqual(upstream.requests[0]!.json, { ...payload, response_format: 'b64_json' })
  const { results } = res.json() as { results: Result[] }
  assert.equal(results.length, 1)
  assert.equal(results[0]!['revised-prompt'], answered(upstream.requests[0]!.responseBody)[0]!.revised_prompt)
  await assertWebpLike(results[0]!.image, upstream.png)
})

test('upstream answers that are not images are a 502', async (t) => {
  const cases: Array<[name: string, data: unknown]> = [
    ['undecodable b64_json', [{ b64_json: Buffer.from('definitely not an image').toString('base64') }]],
    ['no b64_json', [{ url: 'https://example.com/image.png' }]],
    ['no data', undefined],
  ]
  const { app, upstream } = await buildWithUpstream(t)
  for (const [name, data] of cases) {
    upstream.enqueue({ status: 200, body: { created: 1700000000, ...(data !== undefined && { data }) } })
    const res = await app.inject({ method: 'POST', url: URL, payload: { prompt: PROMPT } })
    assert.equal(res.statusCode, 502, `${name}: ${res.body}`)
    assert.equal(res.json().error.code, 'ERR_UPSTREAM_BAD_RESPONSE', name)
  }
  assert.equal(upstream.requests.length, cases.length)
})
