import assert from 'node:assert/strict'
import { createHash, randomFillSync } from 'node:crypto'
import { readdirSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { serveWithUpstream } from './support/app.ts'
import type { RecordedRequest } from './support/fake-openai/index.ts'
import { wavHeader } from './support/wav.ts'

/** The parsed JSON body (fetch types it as unknown). */
const jsonOf = (res: Response): Promise<any> => res.json() as Promise<any>

/**
 * Speech recognition with the audio as a multipart/form-data file part, the way
 * `curl -F audio=@talk.mp3 -F model=whisper-1` sends it, through a real socket.
 */

const ROUTE = '/v1/tasks/speech-recognition'
const MAX = 26_214_400
const SPOOL_PREFIX = 'openai-tasks-upload-'

const serve = serveWithUpstream

/** A 16 kHz mono 16-bit PCM WAV whose data chunk is `dataBytes` of noise (random, so a shifted or repeated slice shows). */
function wav(dataBytes: number): Buffer {
  return Buffer.concat([wavHeader(dataBytes, 16_000), randomFillSync(Buffer.alloc(dataBytes))])
}

/** An ID3v2.4 tag then MPEG-1 Layer III frames (128 kbit/s, 44.1 kHz, 417 bytes each). */
function mp3(frames: number): Buffer {
  const frame = (i: number): Buffer => {
    const f = Buffer.alloc(417, i & 0xff)
    f.set([0xff, 0xfb, 0x90, 0x64])
    return f
  }
  return Buffer.concat([
    Buffer.from('ID3', 'ascii'),
    Buffer.from([4, 0, 0, 0, 0, 0, 0]),
    ...Array.from({ length: frames }, (_, i) => frame(i)),
  ])
}

const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex')
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

type Part = [name: string, value: string | { bytes: Buffer; filename: string; type?: string }]

function form(parts: Part[]): FormData {
  const fd = new FormData()
  for (const [name, value] of parts) {
    if (typeof value === 'string') fd.append(name, value)
    else fd.append(name, new Blob([value.bytes], { type: value.type ?? 'application/octet-stream' }), value.filename)
  }
  return fd
}

function postForm(base: string, parts: Part[]): Promise<Response> {
  return fetch(base + ROUTE, { method: 'POST', body: form(parts) })
}

async function errorOf(res: Response, status: number): Promise<any> {
  const body = await jsonOf(res)
  assert.equal(res.status, status, JSON.stringify(body))
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'details', 'message', 'request-id'])
  return body.error
}

const pathsOf = (error: any): string[] => error.details.map((d: { path: string }) => d.path)

/** The text parts of the form that reached the stand-in, in order. */
function textParts(sent: RecordedRequest): Array<[string, string]> {
  return sent.form!.entries.filter((entry): entry is [string, string] => typeof entry[1] === 'string')
}

function spoolEntries(): Set<string> {
  return new Set(readdirSync(tmpdir()).filter((name) => name.startsWith(SPOOL_PREFIX)))
}

/** Spool directories made since `before` are all gone (removal is asynchronous: poll briefly). */
async function assertSpoolCleaned(before: Set<string>): Promise<void> {
  let left: string[] = []
  for (let i = 0; i < 100; i++) {
    left = [...spoolEntries()].filter((name) => !before.has(name))
    if (!left.length) return
    await sleep(20)
  }
  assert.deepEqual(left, [], 'the temporary spool directories are removed')
}

const FIELDS: Part[] = [
  ['model', 'whisper-1'],
  ['language', 'en'],
  ['prompt', 'A short noisy tone.'],
  ['temperature', '0.3'],
]

for (const order of ['audio first', 'fields first']) {
  test(`multipart upload, ${order}: the upstream gets the exact bytes and typed fields`, async (t) => {
    const { upstream, base } = await serve(t)
    const before = spoolEntries()
    const audio = wav(300_000)
    const file: Part = ['audio', { bytes: audio, filename: 'talk.wav', type: 'audio/wav' }]
    const parts = order === 'audio first' ? [file, ...FIELDS] : [...FIELDS, file]

    // While the upstream call is under way, the upload sits in a spool file of its own.
    let spooledDuringCall: string[] = []
    upstream.setHandler('/audio/transcriptions', (_req, res, rec) => {
      spooledDuringCall = [...spoolEntries()].filter((name) => !before.has(name))
      const file = rec.form!.files.file!
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ text: `heard ${file.data.length} bytes`, usage: { type: 'duration', seconds: 9 } }))
    })

    const res = await postForm(base, parts)
    assert.equal(res.status, 200, await res.clone().text())
    assert.deepEqual(await jsonOf(res), { text: `heard ${audio.length} bytes` })

    assert.equal(upstream.requests.length, 1)
    const sent = upstream.requests[0]!
    assert.equal(sent.path, '/v1/audio/transcriptions')
    const upload = sent.form!.files.file!
    assert.equal(upload.data.length, audio.length)
    assert.ok(upload.data.equals(audio), 'the file part is byte-identical to the upload')
    assert.equal(upload.filename, 'audio.wav')
    assert.equal(upload.type, 'audio/wav')
    assert.deepEqual(sent.form!.fields, {
      model: 'whisper-1',
      prompt: 'A short noisy tone.',
      language: 'en',
      temperature: '0.3',
    })
    assert.equal(spooledDuringCall.length, 1, 'one spool directory while the call was made')
    await assertSpoolCleaned(before)
  })
}

test("the extension comes from the bytes, not the client's filename or type", async (t) => {
  const { upstream, base } = await serve(t)
  const audio = mp3(700)
  const res = await postForm(base, [
    ['model', 'whisper-1'],
    ['audio', { bytes: audio, filename: 'recording.bin', type: 'application/octet-stream' }],
  ])
  assert.equal(res.status, 200, await res.clone().text())
  const upload = upstream.requests[0]!.form!.files.file!
  assert.equal(upload.filename, 'audio.mp3')
  assert.equal(upload.type, 'audio/mpeg')
  assert.ok(upload.data.equals(audio))
  assert.match((await jsonOf(res)).text, new RegExp(`\\(${audio.length} bytes\\)`))
})

test('an upload of exactly 25 MB passes whole; one byte more is a 413 with no upstream call', async (t) => {
  // The stand-in parses 25 MB of multipart in this same process, which stalls the event loop long
  // enough on a busy machine for load shedding (503 ERR_OVERLOADED) to refuse the second request.
  const { upstream, base } = await serve(t, { MAX_EVENT_LOOP_DELAY_MS: '0' })
  const before = spoolEntries()
  const audio = wav(MAX - 44)
  assert.equal(audio.length, MAX)

  const ok = await postForm(base, [
    ['model', 'whisper-1'],
    ['audio', { bytes: audio, filename: 'big.wav' }],
  ])
  assert.equal(ok.status, 200, await ok.clone().text())
  await ok.arrayBuffer()
  const upload = upstream.requests[0]!.form!.files.file!
  assert.equal(upload.data.length, MAX)
  assert.equal(sha256(upload.data), sha256(audio))

  upstream.reset()
  const over = Buffer.concat([audio, Buffer.from([0])])
  const res = await postForm(base, [
    ['model', 'whisper-1'],
    ['audio', { bytes: over, filename: 'big.wav' }],
  ])
  const error = await errorOf(res, 413)
  assert.equal(error.code, 'ERR_MEDIA_TOO_LARGE')
  assert.deepEqual(pathsOf(error), ['/audio'])
  assert.equal(upstream.requests.length, 0)
  await assertSpoolCleaned(before)
})

test('a text field that is not a number (temperature=hot) is a 400 naming temperature', async (t) => {
  const { upstream, base } = await serve(t)
  const before = spoolEntries()
  const res = await postForm(base, [
    ['audio', { bytes: wav(2000), filename: 'a.wav' }],
    ['model', 'whisper-1'],
    ['temperature', 'hot'],
  ])
  const error = await errorOf(res, 400)
  assert.equal(error.code, 'ERR_VALIDATION')
  assert.deepEqual(pathsOf(error), ['/temperature'])
  assert.equal(upstream.requests.length, 0)
  await assertSpoolCleaned(before)
})

test('a temperature out of range as text is a 400 too (the text is typed, then validated)', async (t) => {
  const { upstream, base } = await serve(t)
  const res = await postForm(base, [
    ['audio', { bytes: wav(2000), filename: 'a.wav' }],
    ['model', 'whisper-1'],
    ['temperature', '1.5'],
  ])
  const error = await errorOf(res, 400)
  assert.deepEqual(pathsOf(error), ['/temperature'])
  assert.equal(upstream.requests.length, 0)
})

test('temperature as text is read as JSON reads a number, or refused naming it', async (t) => {
  const { upstream, base } = await serve(t)
  const audio: Part = ['audio', { bytes: wav(2000), filename: 'a.wav' }]
  // JSON's number syntax, then validated: 0.1 as `1e-1` is fine, `1e3` is 1000, over the maximum.
  const typed: Array<[text: string, sent: string]> = [
    ['0', '0'],
    ['0.25', '0.25'],
    ['1', '1'],
    ['1e-1', '0.1'],
    ['25E-2', '0.25'],
  ]
  const refused = ['0x1', '0X1', '0b1', '0o7', '', ' ', ' 1 ', '1 ', '\t0.5', '0.5\n', 'Infinity', 'NaN']
  refused.push('+0.5', '.5', '1.', '01', '1e3', '1e999', '1_0', '0.5.1', '\u0661')
  for (const [text, sent] of typed) {
    await t.test(`temperature=${JSON.stringify(text)} goes to OpenAI as ${sent}`, async () => {
      upstream.reset()
      const res = await postForm(base, [audio, ['model', 'whisper-1'], ['temperature', text]])
      assert.equal(res.status, 200, await res.clone().text())
      assert.equal(upstream.requests.length, 1)
      assert.equal(upstream.requests[0]!.form!.fields.temperature, sent)
    })
  }
  for (const text of refused) {
    await t.test(`temperature=${JSON.stringify(text)} is a 400 naming temperature`, async () => {
      upstream.reset()
      const res = await postForm(base, [audio, ['model', 'whisper-1'], ['temperature', text]])
      const error = await errorOf(res, 400)
      assert.equal(error.code, 'ERR_VALIDATION')
      assert.deepEqual(pathsOf(error), ['/temperature'])
      assert.equal(upstream.requests.length, 0, 'nothing reaches OpenAI')
    })
  }
})

test('a form without model is a 400 naming model', async (t) => {
  const { upstream, base } = await serve(t)
  const res = await postForm(base, [
    ['audio', { bytes: wav(2000), filename: 'a.wav' }],
    ['language', 'en'],
  ])
  const error = await errorOf(res, 400)
  assert.equal(error.code, 'ERR_VALIDATION')
  assert.deepEqual(pathsOf(error), ['/model'])
  assert.equal(upstream.requests.length, 0)
})

test('a form without the audio is a 400 naming audio', async (t) => {
  const { upstream, base } = await serve(t)
  const res = await postForm(base, [['model', 'whisper-1']])
  const error = await errorOf(res, 400)
  assert.deepEqual(pathsOf(error), ['/audio'])
  assert.equal(upstream.requests.length, 0)
})

for (const order of ['before the audio', 'after the audio']) {
  test(`a file part for a field that is not an upload (model), ${order}, is a 400 naming it`, async (t) => {
    const { upstream, base } = await serve(t)
    const before = spoolEntries()
    const audio: Part = ['audio', { bytes: wav(2000), filename: 'a.wav' }]
    const model: Part = ['model', { bytes: Buffer.from('whisper-1'), filename: 'model.txt', type: 'text/plain' }]
    const res = await postForm(base, order === 'before the audio' ? [model, audio] : [audio, model])
    const error = await errorOf(res, 400)
    assert.equal(error.code, 'ERR_VALIDATION')
    assert.deepEqual(pathsOf(error), ['/model'])
    assert.equal(upstream.requests.length, 0)
    await assertSpoolCleaned(before)
  })
}

test('the audio given twice is refused with a service error code naming audio', async (t) => {
  const { upstream, base } = await serve(t)
  const res = await postForm(base, [
    ['model', 'whisper-1'],
    ['audio', { bytes: wav(2000), filename: 'a.wav' }],
    ['audio', { bytes: wav(2000), filename: 'b.wav' }],
  ])
  const body = await jsonOf(res)
  assert.ok(res.status === 400 || res.status === 413, String(res.status))
  assert.match(body.error.code, /^ERR_/, JSON.stringify(body))
  assert.deepEqual(pathsOf(body.error), ['/audio'])
  assert.equal(upstream.requests.length, 0)
})

test('a client that goes away mid-upload leaves no spool file behind and calls no upstream', async (t) => {
  const { upstream, base } = await serve(t)
  const before = spoolEntries()
  const boundary = '----openai-tasks-test-boundary'
  const head = Buffer.from(
    `--${boundary}\r\ncontent-disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n` +
      `--${boundary}\r\ncontent-disposition: form-data; name="audio"; filename="talk.wav"\r\ncontent-type: audio/wav\r\n\r\n`,
  )
  const audio = wav(4_000_000)
  const url = new URL(base + ROUTE)
  const req = request(url, {
    method: 'POST',
    headers: {
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'content-length': String(head.length + audio.length + 100),
    },
  })
  const failed = new Promise<void>((resolve) => {
    req.on('error', () => resolve())
    req.on('close', () => resolve())
  })
  req.write(head)
  req.write(audio.subarray(0, 1_000_000))
  // Wait until the server has started spooling this upload, then hang up.
  for (let i = 0; i < 200 && [...spoolEntries()].every((n) => before.has(n)); i++) await sleep(10)
  assert.ok(
    [...spoolEntries()].some((n) => !before.has(n)),
    'the upload was being spooled',
  )
  req.destroy()
  await failed
  await assertSpoolCleaned(before)
  await sleep(50)
  assert.equal(upstream.requests.length, 0)
})

test('bytes that are not audio are a 400 naming /audio, whatever the client claims', async (t) => {
  const { upstream, base } = await serve(t)
  const before = spoolEntries()
  for (const bytes of [PNG, Buffer.from('just some text, not a recording at all')]) {
    const res = await postForm(base, [
      ['model', 'whisper-1'],
      ['audio', { bytes, filename: 'talk.mp3', type: 'audio/mpeg' }],
    ])
    const error = await errorOf(res, 400)
    assert.equal(error.code, 'ERR_VALIDATION')
    assert.deepEqual(pathsOf(error), ['/audio'])
  }
  assert.equal(upstream.requests.length, 0)
  await assertSpoolCleaned(before)
})

test('the JSON form with base64 audio still works beside multipart', async (t) => {
  const { upstream, base } = await serve(t)
  const audio = wav(20_000)
  const res = await fetch(base + ROUTE, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'whisper-1',
      audio: `data:audio/wav;base64,${audio.toString('base64')}`,
      temperature: 0.3,
    }),
  })
  assert.equal(res.status, 200, await res.clone().text())
  assert.deepEqual(await jsonOf(res), { text: `Transcript of audio.wav (${audio.length} bytes).` })
  const sent = upstream.requests[0]!
  assert.ok(sent.form!.files.file!.data.equals(audio))
  assert.equal(sent.form!.fields.temperature, '0.3')
})

test('list and object fields as text parts: one part per granularity, chunking-strategy as JSON text', async (t) => {
  const { upstream, base } = await serve(t)
  const audio = wav(64_000)
  const res = await postForm(base, [
    ['model', 'whisper-1'],
    ['response-format', 'verbose_json'],
    ['timestamp-granularities', 'word'],
    ['audio', { bytes: audio, filename: 'talk.wav', type: 'audio/wav' }],
    ['timestamp-granularities', 'segment'],
    ['chunking-strategy', '{"type":"server_vad","prefix-padding-ms":120,"threshold":0.4}'],
  ])
  assert.equal(res.status, 200, await res.clone().text())
  const sent = upstream.requests[0]!
  assert.ok(sent.form!.files.file!.data.equals(audio))
  assert.deepEqual(textParts(sent), [
    ['model', 'whisper-1'],
    ['response_format', 'verbose_json'],
    ['timestamp_granularities[]', 'word'],
    ['timestamp_granularities[]', 'segment'],
    ['chunking_strategy[type]', 'server_vad'],
    ['chunking_strategy[prefix_padding_ms]', '120'],
    ['chunking_strategy[threshold]', '0.4'],
  ])
  const answer = JSON.parse(String(sent.responseBody))
  const body = await jsonOf(res)
  assert.equal(body.text, answer.text)
  assert.deepEqual(
    body.words,
    answer.words.map(({ word, start, end }: any) => ({ word, start, end })),
  )
  assert.equal(body.segments.length, 1)
})

test('a single granularity part is a list of one; `name[]` parts count as the list too', async (t) => {
  const { upstream, base } = await serve(t)
  const cases: Array<[parts: Part[], expected: string[]]> = [
    [[['timestamp-granularities', 'word']], ['word']],
    [
      [
        ['timestamp-granularities[]', 'segment'],
        ['timestamp-granularities[]', 'word'],
      ],
      ['segment', 'word'],
    ],
    [
      [
        ['timestamp-granularities', 'word'],
        ['timestamp-granularities[]', 'segment'],
      ],
      ['word', 'segment'],
    ],
  ]
  for (const [granularities, expected] of cases) {
    upstream.reset()
    const res = await postForm(base, [
      ['model', 'whisper-1'],
      ['response-format', 'verbose_json'],
      ...granularities,
      ['audio', { bytes: wav(2000), filename: 'a.wav' }],
    ])
    assert.equal(res.status, 200, await res.clone().text())
    const sent = textParts(upstream.requests[0]!)
      .filter(([name]) => name === 'timestamp_granularities[]')
      .map(([, value]) => value)
    assert.deepEqual(sent, expected, JSON.stringify(granularities))
  }
})

test('chunking-strategy auto as a text part', async (t) => {
  const { upstream, base } = await serve(t)
  const res = await postForm(base, [
    ['model', 'gpt-4o-transcribe'],
    ['chunking-strategy', 'auto'],
    ['audio', { bytes: wav(2000), filename: 'a.wav' }],
  ])
  assert.equal(res.status, 200, await res.clone().text())
  assert.deepEqual(textParts(upstream.requests[0]!), [
    ['model', 'gpt-4o-transcribe'],
    ['chunking_strategy', 'auto'],
  ])
})

test('form parts that do not make the field are a 400 naming it, with no upstream call', async (t) => {
  const { upstream, base } = await serve(t)
  const whisper: Part = ['model', 'whisper-1']
  const cases: Array<[parts: Part[], path: string]> = [
    [[whisper, ['chunking-strategy', '{"type":"server_vad",']], '/chunking-strategy'],
    [[whisper, ['chunking-strategy', '{"type":"server_vad","threshold":"high"}']], '/chunking-strategy/threshold'],
    [
      [whisper, ['response-format', 'verbose_json'], ['timestamp-granularities', 'word,segment']],
      '/timestamp-granularities/0',
    ],
    [[whisper, ['timestamp-granularities', 'word']], '/timestamp-granularities'],
    [
      [
        ['model', 'gpt-4o-transcribe-diarize'],
        ['response-format', 'srt'],
      ],
      '/response-format',
    ],
  ]
  await assertFormsRefused(base, upstream, cases)
})

test('include logprobs as a text part: include[] goes along, the logprobs come back', async (t) => {
  const { upstream, base } = await serve(t)
  const res = await postForm(base, [
    ['model', 'gpt-4o-transcribe'],
    ['include', 'logprobs'],
    ['audio', { bytes: wav(2000), filename: 'a.wav' }],
  ])
  assert.equal(res.status, 200, await res.clone().text())
  assert.deepEqual(textParts(upstream.requests[0]!), [
    ['model', 'gpt-4o-transcribe'],
    ['include[]', 'logprobs'],
  ])
  const answer = JSON.parse(String(upstream.requests[0]!.responseBody))
  assert.deepEqual(await jsonOf(res), { text: answer.text, logprobs: answer.logprobs })
})

test('languages and keywords as text parts, one per value, `[]` names too', async (t) => {
  const { upstream, base } = await serve(t)
  const res = await postForm(base, [
    ['model', 'gpt-transcribe'],
    ['languages[]', 'en'],
    ['keywords', 'Fastify'],
    ['languages', 'nl'],
    ['audio', { bytes: wav(2000), filename: 'a.wav' }],
  ])
  assert.equal(res.status, 200, await res.clone().text())
  assert.deepEqual(textParts(upstream.requests[0]!), [
    ['model', 'gpt-transcribe'],
    ['languages[]', 'en'],
    ['languages[]', 'nl'],
    ['keywords[]', 'Fastify'],
  ])
})

const dataUrl = (bytes: Buffer, mime = 'audio/wav'): string => `data:${mime};base64,${bytes.toString('base64')}`

test('known speakers as text parts: one part per name and per reference, `[]` names too', async (t) => {
  const { upstream, base } = await serve(t)
  const agent = wav(32_000)
  const customer = mp3(40)
  const res = await postForm(base, [
    ['model', 'gpt-4o-transcribe-diarize'],
    ['response-format', 'diarized_json'],
    ['known-speaker-names', 'agent'],
    ['known-speaker-references[]', dataUrl(agent)],
    ['audio', { bytes: wav(64_000), filename: 'call.wav', type: 'audio/wav' }],
    ['known-speaker-names[]', 'customer'],
    ['known-speaker-references', dataUrl(customer, 'application/octet-stream')],
  ])
  assert.equal(res.status, 200, await res.clone().text())
  assert.deepEqual(textParts(upstream.requests[0]!), [
    ['model', 'gpt-4o-transcribe-diarize'],
    ['response_format', 'diarized_json'],
    ['known_speaker_names[]', 'agent'],
    ['known_speaker_names[]', 'customer'],
    ['known_speaker_references[]', dataUrl(agent)],
    ['known_speaker_references[]', dataUrl(customer, 'audio/mpeg')],
    ['chunking_strategy', 'auto'],
  ])
  const body = await jsonOf(res)
  assert.deepEqual(
    body.segments.map((segment: { speaker: string }) => segment.speaker),
    ['agent', 'customer'],
  )
})

test('newer fields in a form that do not fit: a 400 naming the field, no upstream call', async (t) => {
  const { upstream, base } = await serve(t)
  const diarize: Part = ['model', 'gpt-4o-transcribe-diarize']
  const cases: Array<[parts: Part[], path: string]> = [
    [
      [
        diarize,
        ['known-speaker-names', 'agent'],
        ['known-speaker-names', 'customer'],
        ['known-speaker-references', dataUrl(wav(2000))],
      ],
      '/known-speaker-references',
    ],
    [
      [diarize, ['known-speaker-names', 'agent'], ['known-speaker-references', dataUrl(PNG)]],
      '/known-speaker-references/0',
    ],
    [
      [diarize, ['known-speaker-names', 'agent'], ['known-speaker-references', wav(2000).toString('base64')]],
      '/known-speaker-references/0',
    ],
    [
      [
        ['model', 'whisper-1'],
        ['keywords', 'Fastify'],
      ],
      '/keywords',
    ],
    [
      [
        ['model', 'gpt-4o-transcribe'],
        ['response-format', 'text'],
        ['include', 'logprobs'],
      ],
      '/include',
    ],
  ]
  await assertFormsRefused(base, upstream, cases)
})

test('a reference of 1 MiB as a text part arrives whole; one byte more is a 400, not a value cut short', async (t) => {
  const { upstream, base } = await serve(t)
  const MiB = 1024 * 1024
  // A data URL of exactly 1 MiB: the prefix, then the base64 of a WAV sized to fill it.
  const prefix = 'data:audio/x-wav;base64,'
  const sample = wav(((MiB - prefix.length) / 4) * 3 - 44)
  const reference = dataUrl(sample, 'audio/x-wav')
  assert.equal(reference.length, MiB)
  const parts = (value: string): Part[] => [
    ['model', 'gpt-4o-transcribe-diarize'],
    ['known-speaker-names', 'agent'],
    ['known-speaker-references', value],
    ['audio', { bytes: wav(2000), filename: 'a.wav' }],
  ]

  const whole = await postForm(base, parts(reference))
  assert.equal(whole.status, 200, await whole.clone().text())
  const sent = textParts(upstream.requests[0]!).find(([name]) => name === 'known_speaker_references[]')
  assert.equal(sent?.[1], dataUrl(sample), 'the whole recording, typed by its bytes')

  upstream.reset()
  const error = await errorOf(await postForm(base, parts(`${reference}A`)), 400)
  assert.equal(error.code, 'ERR_VALIDATION')
  assert.deepEqual(pathsOf(error), ['/known-speaker-references'])
  assert.equal(upstream.requests.length, 0)
})

/** Each form (with a good audio part beside) is a 400 ERR_VALIDATION naming its path; none reaches the stand-in. */
async function assertFormsRefused(
  base: string,
  upstream: { requests: unknown[] },
  cases: Array<[parts: Part[], path: string]>,
): Promise<void> {
  for (const [parts, path] of cases) {
    const res = await postForm(base, [...parts, ['audio', { bytes: wav(2000), filename: 'a.wav' }]])
    const error = await errorOf(res, 400)
    assert.equal(error.code, 'ERR_VALIDATION')
    assert.ok(pathsOf(error).includes(path), `${JSON.stringify(parts)}: ${JSON.stringify(error.details)}`)
  }
  assert.equal(upstream.requests.length, 0)
}
