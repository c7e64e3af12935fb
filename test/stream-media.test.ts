import assert from 'node:assert/strict'
import { request, type IncomingHttpHeaders } from 'node:http'
import { describe, test } from 'node:test'
import sharp from 'sharp'
import { serveWithUpstream } from './support/app.ts'
import { SPEECH_FORMATS } from './support/speech-formats.ts'
import { expectedSpeechBytes, fakeImageBytes } from './support/fake-openai/index.ts'

/** The parsed JSON body (fetch types it as unknown). */
const jsonOf = (res: Response): Promise<any> => res.json() as Promise<any>

/** Audio and image answers as bytes, chosen by Accept, through a real socket. */

const serve = serveWithUpstream

function post(base: string, task: string, body: unknown, accept?: string): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (accept !== undefined) headers.accept = accept
  return fetch(`${base}/v1/tasks/${task}`, { method: 'POST', headers, body: JSON.stringify(body) })
}

/** A POST through node:http, which (unlike fetch) adds no Accept header. */
function rawPost(url: string, body: string): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

async function bytesOf(res: Response): Promise<Buffer> {
  return Buffer.from(await res.arrayBuffer())
}

async function errorOf(res: Response, status: number): Promise<any> {
  assert.equal(res.status, status)
  assert.match(String(res.headers.get('content-type')), /^application\/json/)
  const body = await jsonOf(res)
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'details', 'message', 'request-id'])
  assert.equal(body.error['request-id'], res.headers.get('x-request-id'))
  return body.error
}

describe('text to speech as audio bytes', () => {
  // Long enough for the stand-in to send its audio in several 4 KB chunks.
  const SPEECH = {
    model: 'tts-1',
    text: 'Hello from openai-tasks, streamed as it is spoken. '.repeat(5),
    voice: 'alloy',
  }

  test('Accept audio/* without response-format: the exact mp3 bytes the upstream sent', async (t) => {
    const { upstream, base } = await serve(t)
    const res = await post(base, 'text-to-speech', SPEECH, 'audio/*')
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('content-type'), 'audio/mpeg')
    const body = await bytesOf(res)

    assert.equal(upstream.requests.length, 1)
    const sent = upstream.requests[0]!
    assert.equal(sent.path, '/v1/audio/speech')
    assert.equal(sent.json.response_format, 'mp3')
    assert.equal(sent.headers.accept, 'audio/mpeg')
    assert.ok(sent.responseBody!.length > 4096, 'the stand-in sent several chunks')
    assert.ok(
      body.equals(sent.responseBody!),
      `byte-exact: got ${body.length} bytes, sent ${sent.responseBody!.length}`,
    )
    assert.ok(body.equals(expectedSpeechBytes(sent.json)))
    assert.equal(body.subarray(0, 3).toString('latin1'), 'ID3')
  })

  test('each response-format, with Accept audio/*, gets its content type and exact bytes', async (t) => {
    const { upstream, base } = await serve(t)
    for (const [format, mime] of SPEECH_FORMATS) {
      upstream.reset()
      const res = await post(base, 'text-to-speech', { ...SPEECH, 'response-format': format }, 'audio/*')
      assert.equal(res.status, 200, format)
      assert.equal(res.headers.get('content-type'), mime, format)
      assert.equal(res.headers.get('content-disposition'), `attachment; filename="speech.${format}"`)
      const body = await bytesOf(res)
      const sent = upstream.requests[0]!
      assert.equal(sent.json.response_format, format)
      assert.ok(body.equals(expectedSpeechBytes(sent.json)), `${format}: byte-exact`)
      assert.ok(body.equals(sent.responseBody!), `${format}: what the upstream sent`)
    }
  })

  test('response-type works as response-format does', async (t) => {
    const { upstream, base } = await serve(t)
    const res = await post(base, 'text-to-speech', { ...SPEECH, 'response-type': 'wav' }, 'audio/*')
    assert.equal(res.headers.get('content-type'), 'audio/wav')
    const body = await bytesOf(res)
    assert.equal(upstream.requests[0]!.json.response_format, 'wav')
    assert.equal(body.subarray(0, 4).toString('latin1'), 'RIFF')
    assert.ok(body.equals(upstream.requests[0]!.responseBody!))
  })

  test('without response-format the format follows Accept alone', async (t) => {
    const { upstream, base } = await serve(t)
    for (const [format, mime] of SPEECH_FORMATS) {
      upstream.reset()
      const res = await post(base, 'text-to-speech', SPEECH, mime)
      assert.equal(res.status, 200, mime)
      assert.equal(res.headers.get('content-type'), mime)
      const body = await bytesOf(res)
      const sent = upstream.requests[0]!
      assert.equal(sent.json.response_format, format, `${mime} asks the upstream for ${format}`)
      assert.ok(body.equals(expectedSpeechBytes(sent.json)), `${format}: byte-exact`)
    }
  })

  test('Accept audio/flac with response-format mp3 is a 406 naming response-format, with no upstream call', async (t) => {
    const { upstream, base } = await serve(t)
    const res = await post(base, 'text-to-speech', { ...SPEECH, 'response-format': 'mp3' }, 'audio/flac')
    const error = await errorOf(res, 406)
    assert.equal(error.code, 'ERR_NOT_ACCEPTABLE')
    assert.deepEqual(
      error.details.map((d: { field: string }) => d.field),
      ['response-format'],
    )
    assert.match(error.message, /response-format/)
    assert.equal(upstream.requests.length, 0)
  })

  for (const accept of ['*/*', 'application/json', 'text/html']) {
    test(`Accept ${accept}: the JSON answer with a data URI`, async (t) => {
      const { upstream, base } = await serve(t)
      const res = await post(base, 'text-to-speech', SPEECH, accept)
      assert.equal(res.status, 200)
      assert.match(String(res.headers.get('content-type')), /^application\/json/)
      const body = await jsonOf(res)
      assert.deepEqual(Object.keys(body), ['audio'])
      const expected = expectedSpeechBytes(upstream.requests[0]!.json)
      assert.equal(body.audio, `data:audio/mpeg;base64,${expected.toString('base64')}`)
    })
  }

  test('no Accept header at all: the JSON answer', async (t) => {
    const { upstream, base } = await serve(t)
    // fetch always sends an Accept header; node:http sends none unless told to.
    const res = await rawPost(`${base}/v1/tasks/text-to-speech`, JSON.stringify(SPEECH))
    assert.equal(res.status, 200)
    assert.match(String(res.headers['content-type']), /^application\/json/)
    const expected = expectedSpeechBytes(upstream.requests[0]!.json)
    assert.deepEqual(JSON.parse(res.body.toString()), {
      audio: `data:audio/mpeg;base64,${expected.toString('base64')}`,
    })
  })

  test('a 200 JSON answer instead of audio is a 502 error body, not a 200 stream', async (t) => {
    const { upstream, base } = await serve(t)
    // An OpenAI-compatible server that answers the speech call with JSON.
    upstream.setHandler('/audio/speech', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"audio":"UklGRg=="}')
    })
    const res = await post(base, 'text-to-speech', SPEECH, 'audio/*')
    const error = await errorOf(res, 502)
    assert.equal(error.code, 'ERR_UPSTREAM_BAD_RESPONSE')
    assert.match(error.message, /application\/json/)
    assert.equal(upstream.requests.length, 1)
    // The connection is still good for the next call.
    upstream.setHandler('/audio/speech', undefined)
    const next = await post(base, 'text-to-speech', SPEECH, 'audio/mpeg')
    assert.equal(next.status, 200)
    assert.ok((await bytesOf(next)).equals(expectedSpeechBytes(upstream.requests[1]!.json)))
  })

  test('a custom voice with instructions streams the exact bytes', async (t) => {
    const { upstream, base } = await serve(t)
    const input = { ...SPEECH, model: 'gpt-4o-mini-tts', voice: { id: 'voice_1234' }, instructions: 'Calm and slow.' }
    const res = await post(base, 'text-to-speech', input, 'audio/flac')
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('content-type'), 'audio/flac')
    const sent = upstream.requests[0]!
    assert.deepEqual(sent.json, {
      model: 'gpt-4o-mini-tts',
      input: SPEECH.text,
      voice: { id: 'voice_1234' },
      instructions: 'Calm and slow.',
      response_format: 'flac',
    })
    assert.ok((await bytesOf(res)).equals(expectedSpeechBytes(sent.json)))
  })

  test('instructions for tts-1 on the audio route are a 400 naming instructions, with no upstream call', async (t) => {
    const { upstream, base } = await serve(t)
    const res = await post(base, 'text-to-speech', { ...SPEECH, instructions: 'Whisper.' }, 'audio/*')
    const error = await errorOf(res, 400)
    assert.deepEqual(
      error.details.map((d: { field: string }) => d.field),
      ['instructions'],
    )
    assert.equal(upstream.requests.length, 0)
  })

  test("a truncated upstream audio body makes the client's read fail, not end cleanly", async (t) => {
    const { upstream, base } = await serve(t)
    upstream.enqueue({ kind: 'truncated-stream', path: '/v1/audio/speech' })
    const res = await post(base, 'text-to-speech', SPEECH, 'audio/*')
    assert.equal(res.status, 200, 'the headers went out before the cut')
    assert.equal(res.headers.get('content-type'), 'audio/mpeg')
    await assert.rejects(res.arrayBuffer(), 'reading the body fails')

    const sent = upstream.requests[0]!
    assert.equal(sent.behaviour?.kind, 'truncated-stream')
    assert.ok(sent.responseBody!.length < expectedSpeechBytes(sent.json).length, 'the stand-in did cut the body')
  })
})

describe('text to image as image bytes', () => {
  const PROMPT = 'A cute baby wombat — ünïcode, 100% fun & "quotes"\nsecond line'

  async function assertWebp(body: Buffer, png: Buffer): Promise<void> {
    assert.equal(body.subarray(0, 4).toString('latin1'), 'RIFF')
    assert.equal(body.subarray(8, 12).toString('latin1'), 'WEBP')
    const [got, source] = await Promise.all([sharp(body).metadata(), sharp(png).metadata()])
    assert.equal(got.format, 'webp')
    assert.equal(source.format, 'png')
    assert.equal(got.width, source.width)
    assert.equal(got.height, source.height)
    // The same picture: the centre pixel keeps the stand-in's green.
    const { data } = await sharp(body).removeAlpha().raw().toBuffer({ resolveWithObject: true })
    const [r, g, b] = [data[0]!, data[1]!, data[2]!]
    assert.ok(Math.abs(r - 16) < 8 && Math.abs(g - 163) < 8 && Math.abs(b - 127) < 8, `pixel ${r},${g},${b}`)
  }

  test('Accept image/webp, dall-e-3: WebP bytes and the percent-encoded revised prompt', async (t) => {
    const { upstream, base } = await serve(t)
    const input = { model: 'dall-e-3', prompt: PROMPT, size: '1024x1024' }
    const res = await post(base, 'text-to-image', input, 'image/webp')
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('content-type'), 'image/webp')
    await assertWebp(await bytesOf(res), upstream.png)

    const header = res.headers.get('x-revised-prompt')
    assert.ok(header !== null)
    assert.match(header, /^[\x21-\x7e]*$/, 'the header is plain ASCII')
    assert.equal(decodeURIComponent(header), `A detailed rendering of: ${PROMPT}`)
    assert.equal(upstream.requests.length, 1)
    assert.equal(upstream.requests[0]!.json.response_format, 'b64_json')
    assert.equal('n' in upstream.requests[0]!.json, false, "one image, OpenAI's default")
  })

  test('Accept image/*, dall-e-2: WebP bytes and an empty revised prompt', async (t) => {
    const { upstream, base } = await serve(t)
    const res = await post(base, 'text-to-image', { model: 'dall-e-2', prompt: 'A wombat', size: '256x256' }, 'image/*')
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('content-type'), 'image/webp')
    await assertWebp(await bytesOf(res), upstream.png)
    assert.equal(res.headers.get('x-revised-prompt'), '')
  })

  test("Accept image/png: the stand-in's PNG untouched", async (t) => {
    const { upstream, base } = await serve(t)
    const res = await post(base, 'text-to-image', { model: 'dall-e-3', prompt: 'A wombat' }, 'image/png')
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('content-type'), 'image/png')
    const body = await bytesOf(res)
    assert.ok(body.equals(upstream.png), 'byte-identical to the upstream PNG')
    assert.equal(decodeURIComponent(res.headers.get('x-revised-prompt')!), 'A detailed rendering of: A wombat')
  })

  for (const accept of ['image/webp', 'image/png', 'image/*']) {
    test(`n = 2 with Accept ${accept} is a 406 naming n, with no upstream call`, async (t) => {
      const { upstream, base } = await serve(t)
      const res = await post(
        base,
        'text-to-image',
        { model: 'dall-e-2', prompt: 'Two wombats', n: 2, size: '256x256' },
        accept,
      )
      const error = await errorOf(res, 406)
      assert.equal(error.code, 'ERR_NOT_ACCEPTABLE')
      assert.deepEqual(
        error.details.map((d: { field: string }) => d.field),
        ['n'],
      )
      assert.equal(upstream.requests.length, 0)
    })
  }

  for (const [format, accept] of [
    ['jpeg', 'image/*'],
    ['webp', 'image/webp'],
    ['png', 'image/png'],
    ['jpeg', 'image/jpeg, image/png;q=0.5'],
  ]) {
    test(`output-format ${format}, Accept ${accept}: OpenAI's ${format} bytes untouched`, async (t) => {
      const { upstream, base } = await serve(t)
      const input = { model: 'gpt-image-1', prompt: 'A wombat', 'output-format': format }
      const res = await post(base, 'text-to-image', input, accept)
      assert.equal(res.status, 200)
      assert.equal(res.headers.get('content-type'), `image/${format}`)
      const body = await bytesOf(res)
      assert.ok(
        body.equals(await fakeImageBytes(format as 'png' | 'jpeg' | 'webp')),
        'byte-identical to what the stand-in drew',
      )
      const sent = upstream.requests[0]!
      assert.equal(sent.json.output_format, format)
      assert.equal(sent.json.response_format, undefined)
      assert.equal(res.headers.get('x-revised-prompt'), '', 'GPT image models do not rewrite prompts')
    })
  }

  for (const [format, accept] of [
    ['png', 'image/webp'],
    ['webp', 'image/png'],
    ['jpeg', 'image/webp, image/png'],
  ]) {
    test(`output-format ${format} with Accept ${accept} is a 406 naming output-format, with no upstream call`, async (t) => {
      const { upstream, base } = await serve(t)
      const res = await post(
        base,
        'text-to-image',
        { model: 'gpt-image-1', prompt: 'A wombat', 'output-format': format },
        accept,
      )
      const error = await errorOf(res, 406)
      assert.equal(error.code, 'ERR_NOT_ACCEPTABLE')
      assert.deepEqual(
        error.details.map((d: { field: string }) => d.field),
        ['output-format'],
      )
      assert.equal(upstream.requests.length, 0)
    })
  }

  test('Accept image/jpeg without output-format: the PNG converted to JPEG, nothing more asked of OpenAI', async (t) => {
    const { upstream, base } = await serve(t)
    const res = await post(
      base,
      'text-to-image',
      { model: 'dall-e-2', prompt: 'A wombat', size: '256x256' },
      'image/jpeg',
    )
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('content-type'), 'image/jpeg')
    const body = await bytesOf(res)
    const [got, source] = await Promise.all([sharp(body).metadata(), sharp(upstream.png).metadata()])
    assert.equal(got.format, 'jpeg')
    assert.equal(got.width, source.width)
    assert.equal(got.height, source.height)
    const { data } = await sharp(body).raw().toBuffer({ resolveWithObject: true })
    const [r, g, b] = [data[0]!, data[1]!, data[2]!]
    assert.ok(Math.abs(r - 16) < 12 && Math.abs(g - 163) < 12 && Math.abs(b - 127) < 12, `pixel ${r},${g},${b}`)
    assert.deepEqual(upstream.requests[0]!.json, {
      model: 'dall-e-2',
      prompt: 'A wombat',
      size: '256x256',
      response_format: 'b64_json',
    })
  })

  test('Accept image/jpeg: transparent areas of the PNG become white', async (t) => {
    const { upstream, base } = await serve(t)
    const transparent = await sharp({
      create: { width: 4, height: 4, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } },
    })
      .png()
      .toBuffer()
    upstream.enqueue({
      status: 200,
      body: { created: 1700000000, data: [{ b64_json: transparent.toString('base64') }] },
    })
    const res = await post(
      base,
      'text-to-image',
      { model: 'gpt-image-1', prompt: 'Nothing', background: 'transparent' },
      'image/jpeg',
    )
    assert.equal(res.status, 200)
    const { data } = await sharp(await bytesOf(res))
      .raw()
      .toBuffer({ resolveWithObject: true })
    assert.ok(
      data.every((v) => v > 240),
      `white, not black: ${[...data.subarray(0, 3)]}`,
    )
  })

  test('GPT image model without output-format, Accept image/png: the PNG untouched', async (t) => {
    const { upstream, base } = await serve(t)
    const res = await post(
      base,
      'text-to-image',
      { model: 'gpt-image-1.5', prompt: 'A wombat', quality: 'low' },
      'image/png',
    )
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('content-type'), 'image/png')
    assert.ok((await bytesOf(res)).equals(upstream.png))
    assert.equal(res.headers.get('x-revised-prompt'), '')
    assert.equal(upstream.requests[0]!.json.output_format, undefined)
  })

  test('a setting the model does not take is a 400 before the Accept header is considered', async (t) => {
    const { upstream, base } = await serve(t)
    const res = await post(
      base,
      'text-to-image',
      { model: 'gpt-image-1', prompt: 'A wombat', style: 'vivid', n: 2 },
      'image/png',
    )
    const error = await errorOf(res, 400)
    assert.equal(error.code, 'ERR_VALIDATION')
    assert.deepEqual(
      error.details.map((d: { field: string }) => d.field),
      ['style'],
    )
    assert.equal(upstream.requests.length, 0)
  })

  test('n = 2 without an image Accept stays JSON with two WebP data URIs', async (t) => {
    const { upstream, base } = await serve(t)
    const res = await post(
      base,
      'text-to-image',
      { model: 'dall-e-2', prompt: 'Two wombats', n: 2, size: '256x256' },
      'application/json',
    )
    assert.equal(res.status, 200)
    const body = await jsonOf(res)
    assert.equal(body.results.length, 2)
    for (const result of body.results) {
      assert.match(result.image, /^data:image\/webp;base64,/)
      await assertWebp(Buffer.from(result.image.split(',')[1], 'base64'), upstream.png)
      assert.equal(result['revised-prompt'], '')
    }
  })
})
