import assert from 'node:assert/strict'
import { test } from 'node:test'
import sharp from 'sharp'
import { buildWithUpstream, serveWithUpstream } from './support/app.ts'
import { fakeImageBytes } from './support/fake-openai/index.ts'

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

test('without a model OpenAI draws with dall-e-2; only the prompt and b64_json are sent', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const res = await app.inject({ method: 'POST', url: URL, payload: { prompt: PROMPT } })

  assert.equal(res.statusCode, 200, res.body)
  assert.equal(upstream.requests.length, 1)
  const sent = upstream.requests[0]!
  assert.equal(sent.path, '/v1/images/generations')
  assert.deepEqual(sent.json, {
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
  const res = await app.inject({
    method: 'POST',
    url: URL,
    payload: { model: 'dall-e-2', prompt: PROMPT, n: 3, size: '256x256' },
  })

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

test('GPT image models are sent no response_format and answer WebP without output-format', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  for (const model of [
    'gpt-image-1',
    'gpt-image-1-mini',
    'gpt-image-1.5',
    'gpt-image-2',
    'chatgpt-image-latest',
    'gpt-image-2-2026-04-21',
  ]) {
    upstream.reset()
    const res = await app.inject({ method: 'POST', url: URL, payload: { model, prompt: PROMPT } })

    assert.equal(res.statusCode, 200, `${model}: ${res.body}`)
    assert.deepEqual(upstream.requests[0]!.json, { model, prompt: PROMPT }, model)
    const { results } = res.json() as { results: Result[] }
    assert.equal(results.length, 1)
    await assertWebpLike(results[0]!.image, upstream.png)
    assert.equal(results[0]!['revised-prompt'], '', `${model} does not rewrite prompts`)
  }
})

test('every GPT image field is sent under its OpenAI name, and the PNG comes back untouched', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const payload = {
    model: 'gpt-image-1.5',
    prompt: PROMPT,
    n: 2,
    size: '1536x1024',
    quality: 'high',
    background: 'transparent',
    'output-format': 'png',
    moderation: 'low',
  }
  const res = await app.inject({ method: 'POST', url: URL, payload })

  assert.equal(res.statusCode, 200, res.body)
  const sent = upstream.requests[0]!
  assert.deepEqual(sent.json, {
    model: 'gpt-image-1.5',
    prompt: PROMPT,
    n: 2,
    size: '1536x1024',
    quality: 'high',
    background: 'transparent',
    output_format: 'png',
    moderation: 'low',
  })
  const data = answered(sent.responseBody)
  assert.equal(data.length, 2)
  assert.ok(
    data.every((image) => !('revised_prompt' in image)),
    'GPT image answers have no revised_prompt',
  )
  assert.deepEqual(res.json(), {
    results: data.map((image) => ({ image: `data:image/png;base64,${image.b64_json}`, 'revised-prompt': '' })),
  })
  assert.ok(Buffer.from(data[0]!.b64_json!, 'base64').equals(upstream.png))
})

for (const format of ['jpeg', 'webp'] as const) {
  test(`output-format ${format} with compression: OpenAI's ${format} bytes in a data:image/${format} URI`, async (t) => {
    const { app, upstream } = await buildWithUpstream(t)
    const payload = { model: 'gpt-image-1', prompt: PROMPT, 'output-format': format, 'output-compression': 40 }
    const res = await app.inject({ method: 'POST', url: URL, payload })

    assert.equal(res.statusCode, 200, res.body)
    assert.deepEqual(upstream.requests[0]!.json, {
      model: 'gpt-image-1',
      prompt: PROMPT,
      output_format: format,
      output_compression: 40,
    })
    const [image] = answered(upstream.requests[0]!.responseBody)
    const expected = await fakeImageBytes(format)
    assert.ok(Buffer.from(image!.b64_json!, 'base64').equals(expected), `the stand-in drew a ${format}`)
    assert.deepEqual(res.json(), {
      results: [{ image: `data:image/${format};base64,${image!.b64_json}`, 'revised-prompt': '' }],
    })
  })
}

test('an image in another format than output-format asked for is converted to it', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  // An OpenAI-compatible server that ignores output_format and draws a PNG.
  upstream.enqueue({
    status: 200,
    body: { created: 1700000000, data: [{ b64_json: upstream.png.toString('base64') }] },
  })
  const res = await app.inject({
    method: 'POST',
    url: URL,
    payload: { model: 'gpt-image-1', prompt: PROMPT, 'output-format': 'jpeg' },
  })
  assert.equal(res.statusCode, 200, res.body)
  const { results } = res.json() as { results: Result[] }
  const prefix = 'data:image/jpeg;base64,'
  assert.ok(results[0]!.image.startsWith(prefix), results[0]!.image.slice(0, 40))
  const meta = await sharp(Buffer.from(results[0]!.image.slice(prefix.length), 'base64')).metadata()
  assert.equal(meta.format, 'jpeg')
  assert.equal(meta.width, (await sharp(upstream.png).metadata()).width)
})

test("prompts exactly at the model's limit are accepted", async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const cases: Array<[model: string | undefined, length: number]> = [
    [undefined, 1000],
    ['dall-e-2', 1000],
    ['dall-e-3', 4000],
    ['gpt-image-1', 4001],
    ['gpt-image-1.5', 32000],
  ]
  for (const [model, length] of cases) {
    upstream.reset()
    const prompt = 'w'.repeat(length)
    const res = await app.inject({ method: 'POST', url: URL, payload: { ...(model && { model }), prompt } })
    assert.equal(res.statusCode, 200, `${model} ${length}: ${res.body.slice(0, 300)}`)
    assert.equal(upstream.requests[0]!.json.prompt, prompt)
  }
})

test("the spec's settings rules are a 400 naming the field, with no upstream call", async (t) => {
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
    ['a size that is not WIDTHxHEIGHT', { model: 'gpt-image-2', prompt: PROMPT, size: 'large' }, '/size'],
    ['empty prompt', { prompt: '' }, '/prompt'],
    ['no prompt', { model: 'dall-e-2' }, '/prompt'],
    ['another task id', { task: 'TASK_TEXT_GENERATION', prompt: PROMPT }, '/task'],
    ['gpt-image-1 with 32001 characters', { model: 'gpt-image-1', prompt: 'w'.repeat(32001) }, '/prompt'],
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

test("the PicassoAI recipe's openai-0 input is accepted as written", async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  // The recipe's input block, with ${variable.colour} and ${mistral-0.output.text} filled in.
  const payload = {
    model: 'dall-e-3',
    n: 1,
    prompt:
      'Using this primary color palette: blue\n\n' +
      "Create an image in the style of Picasso's Blue period: a cute baby wombat, fractured into cubist planes",
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

test('each model family refuses the settings it does not take: a 400 naming the field, and why', async (t) => {
  // The last entry is what the message must say: the model, or the format rule broken.
  const cases: Array<[name: string, payload: object, path: string, says: string]> = [
    ['gpt-image-1 with quality hd', { model: 'gpt-image-1', quality: 'hd' }, '/quality', 'gpt-image-1'],
    [
      'gpt-image-1.5 with quality standard',
      { model: 'gpt-image-1.5', quality: 'standard' },
      '/quality',
      'gpt-image-1.5',
    ],
    ['gpt-image-1-mini with style', { model: 'gpt-image-1-mini', style: 'vivid' }, '/style', 'gpt-image-1-mini'],
    ['gpt-image-2 with 1000x1000', { model: 'gpt-image-2', size: '1000x1000' }, '/size', 'divisible by 16'],
    ['gpt-image-2 wider than 3:1', { model: 'gpt-image-2', size: '3200x1056' }, '/size', '1:3 and 3:1'],
    ['gpt-image-2 taller than 1:3', { model: 'gpt-image-2', size: '512x1552' }, '/size', '1:3 and 3:1'],
    ['gpt-image-2 over 3840x2160', { model: 'gpt-image-2', size: '2400x3600' }, '/size', '3840x2160 or 2160x3840'],
    ['gpt-image-1.5 with a free size', { model: 'gpt-image-1.5', size: '1536x864' }, '/size', 'gpt-image-1.5'],
    [
      'chatgpt-image-latest with 512x512',
      { model: 'chatgpt-image-latest', size: '512x512' },
      '/size',
      'chatgpt-image-latest',
    ],
    [
      'a dated gpt-image-2 with 4096x2048',
      { model: 'gpt-image-2-2026-04-21', size: '4096x2048' },
      '/size',
      'gpt-image-2-2026-04-21',
    ],
    ['gpt-image-1 with 1024x1792', { model: 'gpt-image-1', size: '1024x1792' }, '/size', 'gpt-image-1'],
    ['dall-e-3 with background', { model: 'dall-e-3', background: 'opaque' }, '/background', 'dall-e-3'],
    ['dall-e-3 with output-format', { model: 'dall-e-3', 'output-format': 'png' }, '/output-format', 'dall-e-3'],
    [
      'dall-e-3 with output-compression',
      { model: 'dall-e-3', 'output-compression': 50 },
      '/output-compression',
      'dall-e-3',
    ],
    ['dall-e-3 with moderation', { model: 'dall-e-3', moderation: 'low' }, '/moderation', 'dall-e-3'],
    ['dall-e-2 with background', { model: 'dall-e-2', background: 'transparent' }, '/background', 'dall-e-2'],
    ['the default model with output-format', { 'output-format': 'webp' }, '/output-format', 'dall-e-2'],
    ['the default model with moderation', { moderation: 'auto' }, '/moderation', 'dall-e-2'],
    ['dall-e-3 with 1536x1024', { model: 'dall-e-3', size: '1536x1024' }, '/size', 'dall-e-3'],
    ['dall-e-3 with size auto', { model: 'dall-e-3', size: 'auto' }, '/size', 'dall-e-3'],
    ['dall-e-2 with 1024x1536', { model: 'dall-e-2', size: '1024x1536' }, '/size', 'dall-e-2'],
    [
      'a dated dall-e-3 with quality high',
      { model: 'dall-e-3-2024-01-01', quality: 'high' },
      '/quality',
      'dall-e-3-2024-01-01',
    ],
    ['dall-e-2 with quality low', { model: 'dall-e-2', quality: 'low' }, '/quality', 'dall-e-2'],
    [
      'output-compression without output-format',
      { model: 'gpt-image-1', 'output-compression': 80 },
      '/output-compression',
      'jpeg or webp',
    ],
    [
      'output-compression with png',
      { model: 'gpt-image-1', 'output-format': 'png', 'output-compression': 80 },
      '/output-compression',
      'jpeg or webp',
    ],
    [
      'a transparent JPEG',
      { model: 'gpt-image-1', 'output-format': 'jpeg', background: 'transparent' },
      '/background',
      'png or webp',
    ],
  ]
  const { app, upstream } = await buildWithUpstream(t)
  for (const [name, fields, path, says] of cases) {
    const res = await app.inject({ method: 'POST', url: URL, payload: { prompt: PROMPT, ...fields } })
    assert.equal(res.statusCode, 400, `${name}: ${res.body.slice(0, 300)}`)
    const { error } = res.json()
    assert.equal(error.code, 'ERR_VALIDATION', name)
    assert.deepEqual(paths(res), [path], `${name}: ${JSON.stringify(error.details)}`)
    assert.equal(error.details[0].field, path.slice(1), name)
    assert.ok(error.details[0].message.includes(says), `${name}: ${error.details[0].message}`)
    assert.ok(error.message.startsWith(`The request is invalid: ${path.slice(1)} `), `${name}: ${error.message}`)
  }
  assert.equal(upstream.requests.length, 0)
})

test("gpt-image-2 draws any size within OpenAI's bounds: each is sent as given", async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  // OpenAI's example, its largest, the extreme ratios, a listed size, and a dated snapshot.
  const sizes = ['1536x864', '3840x2160', '2160x3840', '3072x1024', '1024x3072', '1024x1024', '256x256']
  for (const [i, size] of sizes.entries()) {
    const model = i % 2 ? 'gpt-image-2-2026-04-21' : 'gpt-image-2'
    const res = await app.inject({ method: 'POST', url: URL, payload: { model, prompt: PROMPT, size } })
    assert.equal(res.statusCode, 200, `${size}: ${res.body.slice(0, 300)}`)
    assert.deepEqual(upstream.requests.at(-1)!.json, { model, prompt: PROMPT, size }, size)
  }
  assert.equal(upstream.requests.length, sizes.length)
})

test('several settings a model does not take are all named in one 400', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const payload = {
    model: 'dall-e-3',
    prompt: PROMPT,
    size: '1536x1024',
    quality: 'low',
    moderation: 'low',
    'output-format': 'png',
  }
  const res = await app.inject({ method: 'POST', url: URL, payload })
  assert.equal(res.statusCode, 400, res.body)
  assert.deepEqual(paths(res).sort(), ['/moderation', '/output-format', '/quality', '/size'])
  assert.match(res.json().error.message, /size must be 1024x1024, 1792x1024 or 1024x1792 for dall-e-3/)
  assert.equal(upstream.requests.length, 0)
})

test('a model of no known family is not checked: its server decides', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const payload = { model: 'my-diffusion', prompt: PROMPT, size: '1792x1024', quality: 'low', style: 'natural' }
  const res = await app.inject({ method: 'POST', url: URL, payload })
  assert.equal(res.statusCode, 200, res.body)
  assert.deepEqual(upstream.requests[0]!.json, {
    model: 'my-diffusion',
    prompt: PROMPT,
    size: '1792x1024',
    quality: 'low',
    style: 'natural',
    response_format: 'b64_json',
  })
})

test('in a batch, an item the model family refuses gets its own 400 entry; the others are drawn', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const inputs = [
    { model: 'gpt-image-1', prompt: PROMPT, 'output-format': 'jpeg' },
    { model: 'dall-e-2', prompt: PROMPT, 'output-format': 'jpeg' },
    { model: 'dall-e-3', prompt: PROMPT },
  ]
  const res = await app.inject({ method: 'POST', url: `${URL}/batch`, payload: { inputs } })
  assert.equal(res.statusCode, 200, res.body)
  const { outputs } = res.json()
  assert.match(outputs[0].results[0].image, /^data:image\/jpeg;base64,/)
  assert.equal(outputs[1].error.code, 'ERR_VALIDATION')
  assert.equal(outputs[1].error.status, 400)
  assert.deepEqual(
    outputs[1].error.details.map((d: { path: string }) => d.path),
    ['/output-format'],
  )
  await assertWebpLike(outputs[2].results[0].image, upstream.png)
  assert.deepEqual(upstream.requests.map((r) => r.json.model).sort(), ['dall-e-3', 'gpt-image-1'])
})

test("OpenAI's revised prompt, however odd, gives a 200 and a header clients take", async (t) => {
  const { upstream, base } = await serveWithUpstream(t)
  /** What X-Revised-Prompt holds at most, percent-encoded (docs/streaming.md). */
  const HEADER_MAX = 8192
  const cases: Array<[name: string, revised: unknown, inJson: string, inHeader: string | undefined]> = [
    ['a lone surrogate', 'A wombat \ud800 at dusk', 'A wombat \ufffd at dusk', 'A wombat \ufffd at dusk'],
    ['a reversed pair', 'Two \udc00\ud800', 'Two \ufffd\ufffd', 'Two \ufffd\ufffd'],
    ['an object', { text: 'A wombat' }, '', ''],
    ['a number', 42, '', ''],
    ['the most the header holds', 'w'.repeat(HEADER_MAX), 'w'.repeat(HEADER_MAX), 'w'.repeat(HEADER_MAX)],
    ['one byte more', 'w'.repeat(HEADER_MAX + 1), 'w'.repeat(HEADER_MAX + 1), undefined],
    // 1,366 characters, but each is 6 bytes percent-encoded: the bound is on the encoded header.
    ['short but wide', 'é'.repeat(1366), 'é'.repeat(1366), undefined],
    ['200,000 characters', 'a wombat '.repeat(22_223), 'a wombat '.repeat(22_223), undefined],
  ]
  const b64 = upstream.png.toString('base64')
  for (const [name, revised, inJson, inHeader] of cases) {
    await t.test(name, async () => {
      const answer = { created: 1700000000, data: [{ b64_json: b64, revised_prompt: revised }] }
      upstream.reset()
      upstream.enqueue({ status: 200, body: answer, times: 2 })
      const input = JSON.stringify({ model: 'dall-e-3', prompt: `${name}, please` })

      const image = await fetch(base + URL, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'image/png' },
        body: input,
      })
      const bytes = Buffer.from(await image.arrayBuffer())
      assert.equal(image.status, 200, `${name}: ${bytes.toString().slice(0, 300)}`)
      assert.ok(bytes.equals(upstream.png), `${name}: the image itself`)
      const header = image.headers.get('x-revised-prompt')
      if (inHeader === undefined) assert.equal(header, null, `${name}: no header`)
      else {
        assert.ok(header !== null && header.length <= HEADER_MAX, `${name}: ${header?.length} bytes`)
        assert.match(header, /^[\x21-\x7e]*$/, `${name}: plain ASCII`)
        assert.equal(decodeURIComponent(header), inHeader, name)
      }

      const json = await fetch(base + URL, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: input,
      })
      const body = (await json.json()) as { results: Result[] }
      assert.equal(json.status, 200, `${name}: ${JSON.stringify(body).slice(0, 300)}`)
      assert.equal(body.results[0]!['revised-prompt'], inJson, `${name}: the JSON answer keeps the whole prompt`)

      assert.equal(upstream.requests.length, 2, name)
      for (const request of upstream.requests) assert.equal(request.json.prompt, `${name}, please`)
    })
  }
})
