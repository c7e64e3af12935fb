import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { fileTypeFromBuffer } from 'file-type'
import { MAX_AUDIO_BYTES } from '../src/tasks/speech-recognition.ts'
import { buildWithUpstream } from './support/app.ts'
import type { RecordedRequest } from './support/fake-openai/index.ts'
import { wavHeader } from './support/wav.ts'

const URL = '/v1/tasks/speech-recognition'

/** A playable 8 kHz mono 16-bit PCM WAV of `samples` samples. */
function wav(samples = 64): Buffer {
  const data = Buffer.alloc(samples * 2)
  for (let i = 0; i < samples; i++) data.writeInt16LE(Math.round(8000 * Math.sin(i / 3)), i * 2)
  return Buffer.concat([wavHeader(samples * 2, 8000), data])
}

/** One MPEG-1 Layer III frame (128 kbit/s, 44.1 kHz): 417 bytes starting with the frame sync. */
const MP3_FRAME = Buffer.concat([Buffer.from([0xff, 0xfb, 0x90, 0x64]), Buffer.alloc(413)])
/** An ID3v2.4 tag (empty) in front of an MPEG frame. */
const MP3_ID3 = Buffer.concat([Buffer.from('ID3', 'ascii'), Buffer.from([4, 0, 0, 0, 0, 0, 0]), MP3_FRAME])
/** `fLaC` and a STREAMINFO block (last metadata block, 34 bytes). */
const FLAC = Buffer.concat([Buffer.from('fLaC', 'ascii'), Buffer.from([0x80, 0, 0, 0x22]), Buffer.alloc(34, 7)])
/** An Ogg page carrying a Vorbis identification header. */
const OGG_VORBIS = Buffer.concat([
  Buffer.from('OggS', 'ascii'),
  Buffer.from([0, 2]),
  Buffer.alloc(22),
  Buffer.from([1]),
  Buffer.from('vorbis', 'ascii'),
  Buffer.alloc(23, 1),
])
/** An Ogg page carrying an Opus identification header. */
const OGG_OPUS = Buffer.concat([
  Buffer.from('OggS', 'ascii'),
  Buffer.from([0, 2]),
  Buffer.alloc(22),
  Buffer.from('OpusHead', 'ascii'),
  Buffer.alloc(11, 1),
])
const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex')

const dataUri = (mime: string, bytes: Buffer): string => `data:${mime};base64,${bytes.toString('base64')}`

/** The text parts of the form that reached the stand-in, in order. */
function textParts(sent: RecordedRequest): Array<[string, string]> {
  return sent.form!.entries.filter((entry): entry is [string, string] => typeof entry[1] === 'string')
}

function paths(res: { json(): any }): string[] {
  return res.json().error.details.map((d: { path: string }) => d.path)
}

test('the audio samples are what file-type says they are', async () => {
  assert.equal((await fileTypeFromBuffer(wav()))?.ext, 'wav')
  assert.equal((await fileTypeFromBuffer(MP3_FRAME))?.ext, 'mp3')
  assert.equal((await fileTypeFromBuffer(MP3_ID3))?.ext, 'mp3')
  assert.equal((await fileTypeFromBuffer(FLAC))?.ext, 'flac')
  assert.equal((await fileTypeFromBuffer(OGG_VORBIS))?.ext, 'ogg')
  assert.equal((await fileTypeFromBuffer(OGG_OPUS))?.ext, 'opus')
})

test('uploads the decoded WAV with every field and answers with the transcript', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const audio = wav()
  const payload = {
    model: 'whisper-1',
    audio: dataUri('audio/wav', audio),
    prompt: 'A short sine tone.',
    language: 'en',
    temperature: 0.2,
  }
  const res = await app.inject({ method: 'POST', url: URL, payload })

  assert.equal(res.statusCode, 200, res.body)
  assert.equal(upstream.requests.length, 1)
  const sent = upstream.requests[0]!
  assert.equal(sent.path, '/v1/audio/transcriptions')
  assert.match(String(sent.headers['content-type']), /^multipart\/form-data; boundary=/)
  const file = sent.form!.files.file!
  assert.equal(file.filename, 'audio.wav')
  assert.equal(file.type, 'audio/wav')
  assert.ok(file.data.equals(audio), 'the uploaded bytes are the decoded audio')
  assert.deepEqual(sent.form!.fields, {
    model: 'whisper-1',
    prompt: 'A short sine tone.',
    language: 'en',
    temperature: '0.2',
  })

  const transcript = JSON.parse(String(sent.responseBody)).text
  assert.equal(transcript, `Transcript of audio.wav (${audio.length} bytes) in en.`)
  assert.deepEqual(res.json(), { text: transcript })
})

test('without optional fields only the file and the model go along, and OpenAI answers json', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const res = await app.inject({
    method: 'POST',
    url: URL,
    payload: { model: 'whisper-1', audio: dataUri('audio/wav', wav()) },
  })
  assert.equal(res.statusCode, 200, res.body)
  const sent = upstream.requests[0]!
  assert.deepEqual(textParts(sent), [['model', 'whisper-1']])
  assert.deepEqual(res.json(), { text: JSON.parse(String(sent.responseBody)).text })
})

test('each format is detected from its bytes and uploaded under the matching extension', async (t) => {
  const cases: Array<[name: string, bytes: Buffer, filename: string, mime: RegExp]> = [
    ['wav', wav(), 'audio.wav', /^audio\/wav$/],
    ['mp3 with ID3', MP3_ID3, 'audio.mp3', /^audio\/mpeg$/],
    ['mp3 frame', MP3_FRAME, 'audio.mp3', /^audio\/mpeg$/],
    ['flac', FLAC, 'audio.flac', /^audio\/flac$/],
    ['ogg vorbis', OGG_VORBIS, 'audio.ogg', /^audio\/ogg$/],
    ['ogg opus', OGG_OPUS, 'audio.ogg', /^audio\/ogg\b/],
  ]
  const { app, upstream } = await buildWithUpstream(t)
  for (const [name, bytes, filename, mime] of cases) {
    upstream.reset()
    const res = await app.inject({
      method: 'POST',
      url: URL,
      payload: { model: 'whisper-1', audio: bytes.toString('base64') },
    })
    assert.equal(res.statusCode, 200, `${name}: ${res.body}`)
    const file = upstream.requests[0]!.form!.files.file!
    assert.equal(file.filename, filename, name)
    assert.match(file.type, mime, name)
    assert.ok(file.data.equals(bytes), `${name}: bytes arrive unchanged`)
    assert.equal(res.json().text, `Transcript of ${filename} (${bytes.length} bytes).`)
  }
})

test('bare base64, wrapped in lines, decodes to the same bytes', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const audio = wav(200)
  const wrapped = audio.toString('base64').replace(/.{76}/g, '$&\r\n')
  const res = await app.inject({ method: 'POST', url: URL, payload: { model: 'whisper-1', audio: wrapped } })
  assert.equal(res.statusCode, 200, res.body)
  assert.ok(upstream.requests[0]!.form!.files.file!.data.equals(audio))
})

test('URL-safe base64 without padding decodes to the same bytes', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  // 0xfb/0xff bytes make '+' and '/' in standard base64; 418 bytes leave a partial last quad.
  const audio = Buffer.concat([MP3_FRAME, Buffer.from([0xfb])])
  const urlSafe = audio.toString('base64url')
  assert.match(urlSafe, /[-_]/)
  assert.doesNotMatch(urlSafe, /=/)
  const res = await app.inject({ method: 'POST', url: URL, payload: { model: 'whisper-1', audio: urlSafe } })
  assert.equal(res.statusCode, 200, res.body)
  assert.ok(upstream.requests[0]!.form!.files.file!.data.equals(audio))
})

test('an MP3 whose ID3 tag (cover art) is larger than the sniffed head is still an mp3', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const tagSize = 20_000
  const syncsafe = [21, 14, 7, 0].map((shift) => (tagSize >> shift) & 0x7f)
  const audio = Buffer.concat([
    Buffer.from('ID3', 'ascii'),
    Buffer.from([4, 0, 0, ...syncsafe]),
    Buffer.alloc(tagSize, 0x41),
    MP3_FRAME,
  ])
  const res = await app.inject({
    method: 'POST',
    url: URL,
    payload: { model: 'whisper-1', audio: dataUri('audio/mpeg', audio) },
  })
  assert.equal(res.statusCode, 200, res.body)
  const file = upstream.requests[0]!.form!.files.file!
  assert.equal(file.filename, 'audio.mp3')
  assert.ok(file.data.equals(audio))
})

test('a data URI that names the wrong type still uploads the detected type', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  for (const declared of ['audio/mpeg', 'image/png', 'application/octet-stream']) {
    upstream.reset()
    const res = await app.inject({
      method: 'POST',
      url: URL,
      payload: { model: 'whisper-1', audio: dataUri(declared, FLAC) },
    })
    assert.equal(res.statusCode, 200, `${declared}: ${res.body}`)
    const file = upstream.requests[0]!.form!.files.file!
    assert.equal(file.filename, 'audio.flac', declared)
    assert.equal(file.type, 'audio/flac', declared)
    assert.ok(file.data.equals(FLAC), declared)
  }
})

test('the task field is accepted when it names this task', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const payload = { task: 'TASK_SPEECH_RECOGNITION', model: 'whisper-1', audio: dataUri('audio/mpeg', MP3_ID3) }
  const res = await app.inject({ method: 'POST', url: URL, payload })
  assert.equal(res.statusCode, 200, res.body)
  assert.equal(upstream.requests.length, 1)
})

test('refused with a 400 naming the field, before any upstream call', async (t) => {
  const audio = dataUri('audio/wav', wav())
  const cases: Array<[name: string, payload: object, path: string]> = [
    ['another task id', { task: 'TASK_TEXT_TO_SPEECH', model: 'whisper-1', audio }, '/task'],
    ['no audio', { model: 'whisper-1' }, '/audio'],
    ['no model', { audio }, '/model'],
    ['empty audio', { model: 'whisper-1', audio: '' }, '/audio'],
    ['PNG bytes', { model: 'whisper-1', audio: dataUri('audio/wav', PNG) }, '/audio'],
    [
      'plain text bytes',
      { model: 'whisper-1', audio: Buffer.from('not a recording at all').toString('base64') },
      '/audio',
    ],
    ['invalid base64', { model: 'whisper-1', audio: 'data:audio/wav;base64,UklGR!!not*base64' }, '/audio'],
    ['invalid bare base64', { model: 'whisper-1', audio: '%%%%' }, '/audio'],
    ['impossible base64 length', { model: 'whisper-1', audio: 'UklGRiQAA' }, '/audio'],
    ['a data URI without data', { model: 'whisper-1', audio: 'data:audio/wav;base64,' }, '/audio'],
    ['a data URI that is not base64', { model: 'whisper-1', audio: 'data:audio/wav,RIFF' }, '/audio'],
    ['language not a code', { model: 'whisper-1', audio, language: 'english' }, '/language'],
    ['temperature above 1', { model: 'whisper-1', audio, temperature: 1.5 }, '/temperature'],
  ]
  const { app, upstream } = await buildWithUpstream(t)
  for (const [name, payload, path] of cases) {
    const res = await app.inject({ method: 'POST', url: URL, payload })
    assert.equal(res.statusCode, 400, `${name}: ${res.body}`)
    assert.ok(paths(res).includes(path), `${name}: ${JSON.stringify(res.json().error.details)}`)
  }
  assert.equal(upstream.requests.length, 0)
})

test('a transcription answer without text is a 502', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  upstream.enqueue({ status: 200, body: { usage: { type: 'duration', seconds: 1 } } })
  const res = await app.inject({
    method: 'POST',
    url: URL,
    payload: { model: 'whisper-1', audio: dataUri('audio/wav', wav()) },
  })
  assert.equal(res.statusCode, 502, res.body)
  assert.equal(res.json().error.code, 'ERR_UPSTREAM_BAD_RESPONSE')
})

test('audio over 25 MB is a 413 without an upstream call', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  // A WAV header then zeros: 45 bytes encode to 60 base64 characters, every 'AAAA' adds 3 zero bytes.
  const head = wav(8).subarray(0, 45).toString('base64')
  const quads = Math.ceil((MAX_AUDIO_BYTES + 1 - 45) / 3)
  const audio = head + 'AAAA'.repeat(quads)
  assert.ok(45 + quads * 3 > MAX_AUDIO_BYTES)

  const res = await app.inject({ method: 'POST', url: URL, payload: { model: 'whisper-1', audio } })
  assert.equal(res.statusCode, 413, res.body.slice(0, 300))
  assert.equal(res.json().error.code, 'ERR_MEDIA_TOO_LARGE')
  assert.ok(paths(res).includes('/audio'))
  assert.equal(upstream.requests.length, 0)
})

test('audio of exactly 25 MB is uploaded whole', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  // 45 header bytes, zeros in threes, and one more zero byte in the padded last quad.
  const head = wav(8).subarray(0, 45).toString('base64')
  const quads = (MAX_AUDIO_BYTES - 46) / 3
  assert.ok(Number.isInteger(quads))
  const audio = head + 'AAAA'.repeat(quads) + 'AA=='
  const res = await app.inject({ method: 'POST', url: URL, payload: { model: 'whisper-1', audio } })
  assert.equal(res.statusCode, 200, res.body.slice(0, 300))
  assert.equal(upstream.requests[0]!.form!.files.file!.data.length, MAX_AUDIO_BYTES)
})

test('response-format text: the plain text, without the final line break OpenAI ends it with', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const audio = wav()
  for (const model of ['whisper-1', 'gpt-4o-transcribe', 'gpt-4o-mini-transcribe', 'gpt-4o-transcribe-diarize']) {
    upstream.reset()
    const res = await app.inject({
      method: 'POST',
      url: URL,
      payload: { model, audio: dataUri('audio/wav', audio), 'response-format': 'text' },
    })
    assert.equal(res.statusCode, 200, `${model}: ${res.body}`)
    const sent = upstream.requests[0]!
    assert.equal(sent.form!.fields.response_format, 'text')
    const answered = String(sent.responseBody)
    assert.match(String(sent.responseHeaders!['content-type']), /^text\/plain/)
    assert.ok(answered.endsWith('.\n'), JSON.stringify(answered))
    assert.deepEqual(res.json(), { text: answered.slice(0, -1) }, model)
  }
})

for (const format of ['srt', 'vtt']) {
  test(`response-format ${format}: the subtitle file exactly as OpenAI wrote it`, async (t) => {
    const { app, upstream } = await buildWithUpstream(t)
    const res = await app.inject({
      method: 'POST',
      url: URL,
      payload: { model: 'whisper-1', audio: dataUri('audio/wav', wav()), 'response-format': format },
    })
    assert.equal(res.statusCode, 200, res.body)
    const sent = upstream.requests[0]!
    assert.equal(sent.form!.fields.response_format, format)
    const subtitles = String(sent.responseBody)
    assert.match(subtitles, format === 'vtt' ? /^WEBVTT\n\n00:00:00\.000 --> / : /^1\n00:00:00,000 --> /)
    assert.deepEqual(res.json(), { text: subtitles })
  })
}

test('verbose_json with word and segment timestamps: language, duration, segments and words', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const payload = {
    model: 'whisper-1',
    audio: dataUri('audio/wav', wav(4000)),
    'response-format': 'verbose_json',
    'timestamp-granularities': ['word', 'segment'],
    language: 'en',
  }
  const res = await app.inject({ method: 'POST', url: URL, payload })
  assert.equal(res.statusCode, 200, res.body)
  const sent = upstream.requests[0]!
  assert.deepEqual(textParts(sent), [
    ['model', 'whisper-1'],
    ['response_format', 'verbose_json'],
    ['language', 'en'],
    ['timestamp_granularities[]', 'word'],
    ['timestamp_granularities[]', 'segment'],
  ])
  const answer = JSON.parse(String(sent.responseBody))
  assert.ok(answer.words.length > 3 && answer.segments.length === 1, 'the stand-in answered both granularities')
  assert.deepEqual(res.json(), {
    text: answer.text,
    language: answer.language,
    duration: answer.duration,
    segments: answer.segments.map(({ start, end, text }: any) => ({ start, end, text })),
    words: answer.words.map(({ word, start, end }: any) => ({ word, start, end })),
  })
})

test('verbose_json without timestamp-granularities: the segments OpenAI gives by default, no words', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const payload = { model: 'whisper-1', audio: dataUri('audio/wav', wav()), 'response-format': 'verbose_json' }
  const res = await app.inject({ method: 'POST', url: URL, payload })
  assert.equal(res.statusCode, 200, res.body)
  const sent = upstream.requests[0]!
  assert.ok(!sent.form!.entries.some(([name]) => name.startsWith('timestamp_granularities')))
  const body = res.json()
  assert.deepEqual(Object.keys(body).sort(), ['duration', 'language', 'segments', 'text'])
  assert.equal(body.segments.length, 1)
})

test('diarized_json: segments with their speaker, and chunking auto sent for the diarize model', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const payload = {
    model: 'gpt-4o-transcribe-diarize',
    audio: dataUri('audio/wav', wav(4000)),
    'response-format': 'diarized_json',
  }
  const res = await app.inject({ method: 'POST', url: URL, payload })
  assert.equal(res.statusCode, 200, res.body)
  const sent = upstream.requests[0]!
  assert.deepEqual(textParts(sent), [
    ['model', 'gpt-4o-transcribe-diarize'],
    ['response_format', 'diarized_json'],
    ['chunking_strategy', 'auto'],
  ])
  const answer = JSON.parse(String(sent.responseBody))
  assert.deepEqual(
    answer.segments.map((s: any) => s.speaker),
    ['A', 'B'],
  )
  assert.deepEqual(res.json(), {
    text: answer.text,
    duration: answer.duration,
    segments: answer.segments.map(({ start, end, text, speaker }: any) => ({ start, end, text, speaker })),
  })
})

test('the diarize model transcribes audio over 30 seconds: chunking auto goes along unless told otherwise', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  // The stand-in hears 32 kB a second, and refuses unchunked diarization past 30 s as OpenAI does.
  const long = dataUri('audio/wav', wav(520_000))
  const res = await app.inject({
    method: 'POST',
    url: URL,
    payload: { model: 'gpt-4o-transcribe-diarize', audio: long },
  })
  assert.equal(res.statusCode, 200, res.body)
  assert.equal(upstream.requests[0]!.form!.fields.chunking_strategy, 'auto')

  upstream.reset()
  const vad = { type: 'server_vad', 'silence-duration-ms': 500 }
  const tuned = await app.inject({
    method: 'POST',
    url: URL,
    payload: { model: 'gpt-4o-transcribe-diarize', audio: long, 'chunking-strategy': vad },
  })
  assert.equal(tuned.statusCode, 200, tuned.body)
  const entries = textParts(upstream.requests[0]!).filter(([name]) => name.startsWith('chunking_strategy'))
  assert.deepEqual(entries, [
    ['chunking_strategy[type]', 'server_vad'],
    ['chunking_strategy[silence_duration_ms]', '500'],
  ])
})

test('chunking-strategy: auto as is, a server_vad object in snake_case form fields, none unless given', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const audio = dataUri('audio/wav', wav())
  const vad = { type: 'server_vad', 'prefix-padding-ms': 250, 'silence-duration-ms': 400, threshold: 0.65 }
  const cases: Array<[strategy: unknown, model: string, expected: Array<[string, string]>]> = [
    ['auto', 'gpt-4o-transcribe', [['chunking_strategy', 'auto']]],
    [
      vad,
      'gpt-4o-mini-transcribe',
      [
        ['chunking_strategy[type]', 'server_vad'],
        ['chunking_strategy[prefix_padding_ms]', '250'],
        ['chunking_strategy[silence_duration_ms]', '400'],
        ['chunking_strategy[threshold]', '0.65'],
      ],
    ],
    [{ type: 'server_vad' }, 'whisper-1', [['chunking_strategy[type]', 'server_vad']]],
    [undefined, 'gpt-4o-transcribe', []],
  ]
  for (const [strategy, model, expected] of cases) {
    upstream.reset()
    const payload = { model, audio, ...(strategy !== undefined && { 'chunking-strategy': strategy }) }
    const res = await app.inject({ method: 'POST', url: URL, payload })
    assert.equal(res.statusCode, 200, `${JSON.stringify(strategy)}: ${res.body}`)
    const entries = textParts(upstream.requests[0]!).filter(([name]) => name.startsWith('chunking_strategy'))
    assert.deepEqual(entries, expected, JSON.stringify(strategy))
  }
})

test('each model family refuses the fields and formats it does not take: a 400 naming the field', async (t) => {
  const cases: Array<[name: string, fields: object, path: string]> = [
    ['a prompt for the diarize model', { model: 'gpt-4o-transcribe-diarize', prompt: 'Two people.' }, '/prompt'],
    [
      'timestamps for the diarize model',
      { model: 'gpt-4o-transcribe-diarize', 'timestamp-granularities': ['segment'] },
      '/timestamp-granularities',
    ],
    [
      'verbose_json for the diarize model',
      { model: 'gpt-4o-transcribe-diarize', 'response-format': 'verbose_json' },
      '/response-format',
    ],
    ['srt for gpt-4o-transcribe', { model: 'gpt-4o-transcribe', 'response-format': 'srt' }, '/response-format'],
    [
      'vtt for gpt-4o-mini-transcribe',
      { model: 'gpt-4o-mini-transcribe', 'response-format': 'vtt' },
      '/response-format',
    ],
    [
      'verbose_json for a dated gpt-4o-mini-transcribe',
      { model: 'gpt-4o-mini-transcribe-2025-12-15', 'response-format': 'verbose_json' },
      '/response-format',
    ],
    [
      'diarized_json for gpt-4o-transcribe',
      { model: 'gpt-4o-transcribe', 'response-format': 'diarized_json' },
      '/response-format',
    ],
    ['diarized_json for whisper-1', { model: 'whisper-1', 'response-format': 'diarized_json' }, '/response-format'],
    [
      'timestamps without verbose_json',
      { model: 'whisper-1', 'timestamp-granularities': ['word'] },
      '/timestamp-granularities',
    ],
    [
      'timestamps with json',
      { model: 'whisper-1', 'response-format': 'json', 'timestamp-granularities': ['word'] },
      '/timestamp-granularities',
    ],
    ['an unknown format', { model: 'whisper-1', 'response-format': 'xml' }, '/response-format'],
    [
      'an unknown granularity',
      { model: 'whisper-1', 'response-format': 'verbose_json', 'timestamp-granularities': ['sentence'] },
      '/timestamp-granularities/0',
    ],
    [
      'no granularity at all',
      { model: 'whisper-1', 'response-format': 'verbose_json', 'timestamp-granularities': [] },
      '/timestamp-granularities',
    ],
    [
      'a granularity twice',
      { model: 'whisper-1', 'response-format': 'verbose_json', 'timestamp-granularities': ['word', 'word'] },
      '/timestamp-granularities',
    ],
    ['chunking by name other than auto', { model: 'whisper-1', 'chunking-strategy': 'manual' }, '/chunking-strategy'],
    [
      'a vad object of another type',
      { model: 'whisper-1', 'chunking-strategy': { type: 'semantic_vad' } },
      '/chunking-strategy/type',
    ],
    [
      'a vad threshold above 1',
      { model: 'whisper-1', 'chunking-strategy': { type: 'server_vad', threshold: 1.5 } },
      '/chunking-strategy/threshold',
    ],
    [
      "a vad field in OpenAI's spelling",
      { model: 'whisper-1', 'chunking-strategy': { type: 'server_vad', prefix_padding_ms: 10 } },
      '/chunking-strategy/prefix_padding_ms',
    ],
  ]
  await assertRefused(t, cases)
})

test('the family checks name the model and every problem at once', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const payload = {
    model: 'gpt-4o-transcribe-diarize',
    audio: dataUri('audio/wav', wav()),
    prompt: 'x',
    'response-format': 'srt',
    'timestamp-granularities': ['word'],
  }
  const res = await app.inject({ method: 'POST', url: URL, payload })
  assert.equal(res.statusCode, 400, res.body)
  assert.deepEqual(res.json().error.details, [
    { field: 'prompt', path: '/prompt', message: 'is not taken by gpt-4o-transcribe-diarize' },
    {
      field: 'timestamp-granularities',
      path: '/timestamp-granularities',
      message: 'is not taken by gpt-4o-transcribe-diarize',
    },
    {
      field: 'response-format',
      path: '/response-format',
      message: 'must be json, text or diarized_json for gpt-4o-transcribe-diarize',
    },
  ])
  assert.equal(upstream.requests.length, 0)
})

test('a JSON answer whose segments or words are malformed is a 502', async (t) => {
  await assertAnswersRefused(t, { model: 'whisper-1', 'response-format': 'verbose_json' }, [
    { text: 'hi', segments: 'all of it' },
    { text: 'hi', segments: [{ start: '0', end: 1, text: 'hi' }] },
    { text: 'hi', words: [{ word: 'hi', start: 0 }] },
  ])
})

/** Each OpenAI answer to a request with these fields is a 502 ERR_UPSTREAM_BAD_RESPONSE. */
async function assertAnswersRefused(t: TestContext, fields: object, answers: object[]): Promise<void> {
  const { app, upstream } = await buildWithUpstream(t)
  for (const body of answers) {
    upstream.enqueue({ status: 200, body })
    const payload = { audio: dataUri('audio/wav', wav()), ...fields }
    const res = await app.inject({ method: 'POST', url: URL, payload })
    assert.equal(res.statusCode, 502, `${JSON.stringify(body)}: ${res.body}`)
    assert.equal(res.json().error.code, 'ERR_UPSTREAM_BAD_RESPONSE')
  }
}

test('include logprobs: sent as include[], and the tokens OpenAI scores come back as logprobs', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const audio = dataUri('audio/wav', wav())
  for (const model of ['gpt-4o-transcribe', 'gpt-4o-mini-transcribe-2025-12-15']) {
    upstream.reset()
    const payload = { model, audio, 'response-format': 'json', include: ['logprobs'] }
    const res = await app.inject({ method: 'POST', url: URL, payload })
    assert.equal(res.statusCode, 200, `${model}: ${res.body}`)
    const sent = upstream.requests[0]!
    assert.deepEqual(textParts(sent), [
      ['model', model],
      ['response_format', 'json'],
      ['include[]', 'logprobs'],
    ])
    const answer = JSON.parse(String(sent.responseBody))
    assert.ok(answer.logprobs.length > 3, 'the stand-in scored each token')
    assert.deepEqual(res.json(), { text: answer.text, logprobs: answer.logprobs }, model)
  }

  upstream.reset()
  const plain = await app.inject({ method: 'POST', url: URL, payload: { model: 'gpt-4o-transcribe', audio } })
  assert.equal(plain.statusCode, 200, plain.body)
  assert.deepEqual(textParts(upstream.requests[0]!), [['model', 'gpt-4o-transcribe']], 'no include unless given')
  assert.deepEqual(Object.keys(plain.json()), ['text'])
})

/** Each case (fields beside a good audio) is a 400 ERR_VALIDATION naming its path; none reaches the stand-in. */
async function assertRefused(
  t: TestContext,
  cases: Array<[name: string, fields: object, path: string]>,
): Promise<void> {
  const audio = dataUri('audio/wav', wav())
  const { app, upstream } = await buildWithUpstream(t)
  for (const [name, fields, path] of cases) {
    const res = await app.inject({ method: 'POST', url: URL, payload: { audio, ...fields } })
    assert.equal(res.statusCode, 400, `${name}: ${res.body}`)
    assert.equal(res.json().error.code, 'ERR_VALIDATION', name)
    assert.ok(paths(res).includes(path), `${name}: ${JSON.stringify(res.json().error.details)}`)
  }
  assert.equal(upstream.requests.length, 0)
}

test('include is refused for the other known models and outside json: a 400 naming it', async (t) => {
  await assertRefused(t, [
    ['include for the diarize model', { model: 'gpt-4o-transcribe-diarize', include: ['logprobs'] }, '/include'],
    ['include for whisper-1', { model: 'whisper-1', include: ['logprobs'] }, '/include'],
    ['include for gpt-transcribe', { model: 'gpt-transcribe', include: ['logprobs'] }, '/include'],
    [
      'include with verbose_json',
      { model: 'gpt-4o-transcribe', 'response-format': 'verbose_json', include: ['logprobs'] },
      '/include',
    ],
    [
      'include with text',
      { model: 'gpt-4o-mini-transcribe', 'response-format': 'text', include: ['logprobs'] },
      '/include',
    ],
    ['an unknown include', { model: 'gpt-4o-transcribe', include: ['segments'] }, '/include/0'],
  ])
})

test('logprobs that are not tokens with their logprob are a 502', async (t) => {
  await assertAnswersRefused(t, { model: 'gpt-4o-transcribe', include: ['logprobs'] }, [
    { text: 'hi', logprobs: 'high' },
    { text: 'hi', logprobs: [{ token: 'hi' }] },
    { text: 'hi', logprobs: [{ token: 'hi', logprob: -0.1, bytes: 'hi' }] },
  ])
})

test('a model of no known family gets the newer fields as given', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const reference = dataUri('audio/wav', wav())
  const payload = {
    model: 'whisper-large-v3',
    audio: dataUri('audio/wav', wav()),
    include: ['logprobs'],
    languages: ['de'],
    keywords: ['Kubernetes'],
    'known-speaker-names': ['host'],
    'known-speaker-references': [reference],
  }
  const res = await app.inject({ method: 'POST', url: URL, payload })
  assert.equal(res.statusCode, 200, res.body)
  assert.deepEqual(textParts(upstream.requests[0]!), [
    ['model', 'whisper-large-v3'],
    ['include[]', 'logprobs'],
    ['languages[]', 'de'],
    ['keywords[]', 'Kubernetes'],
    ['known_speaker_names[]', 'host'],
    ['known_speaker_references[]', reference],
  ])
})

test('languages and keywords: sent to gpt-transcribe as languages[] and keywords[], one part each', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const payload = {
    model: 'gpt-transcribe',
    audio: dataUri('audio/wav', wav()),
    'response-format': 'srt',
    languages: ['en', 'fr'],
    keywords: ['Fastify', 'gpt-transcribe'],
  }
  const res = await app.inject({ method: 'POST', url: URL, payload })
  assert.equal(res.statusCode, 200, res.body)
  assert.deepEqual(textParts(upstream.requests[0]!), [
    ['model', 'gpt-transcribe'],
    ['response_format', 'srt'],
    ['languages[]', 'en'],
    ['languages[]', 'fr'],
    ['keywords[]', 'Fastify'],
    ['keywords[]', 'gpt-transcribe'],
  ])
})

test("gpt-transcribe's detected languages come back as the output's language codes", async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const audio = dataUri('audio/wav', wav())
  for (const [given, detected] of [
    [undefined, ['en']],
    [
      ['de', 'fr'],
      ['de', 'fr'],
    ],
  ] as const) {
    const payload = { model: 'gpt-transcribe', audio, ...(given && { languages: given }) }
    const res = await app.inject({ method: 'POST', url: URL, payload })
    assert.equal(res.statusCode, 200, res.body)
    const answered = JSON.parse(String(upstream.requests.at(-1)!.responseBody)).languages
    assert.deepEqual(
      answered,
      detected.map((code) => ({ code })),
      'the stand-in answered as OpenAI does',
    )
    assert.deepEqual(res.json().languages, detected)
  }
  // Other models' json answers carry no languages, and the output none either.
  const res = await app.inject({ method: 'POST', url: URL, payload: { model: 'gpt-4o-transcribe', audio } })
  assert.equal(res.statusCode, 200, res.body)
  assert.equal('languages' in res.json(), false)
})

test('languages and keywords are refused by the other known families: a 400 naming the field', async (t) => {
  await assertRefused(t, [
    ['languages for whisper-1', { model: 'whisper-1', languages: ['en'] }, '/languages'],
    ['keywords for whisper-1', { model: 'whisper-1', keywords: ['OpenAI'] }, '/keywords'],
    ['languages for gpt-4o-mini-transcribe', { model: 'gpt-4o-mini-transcribe', languages: ['en'] }, '/languages'],
    ['keywords for the diarize model', { model: 'gpt-4o-transcribe-diarize', keywords: ['OpenAI'] }, '/keywords'],
    ['no language at all', { model: 'gpt-transcribe', languages: [] }, '/languages'],
    ['a language that is no code', { model: 'gpt-transcribe', languages: ['en', 'french'] }, '/languages/1'],
    ['an empty keyword', { model: 'gpt-transcribe', keywords: [''] }, '/keywords/0'],
  ])
})

test('known speakers: names and references one part each, each reference typed by its bytes', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const agent = wav(4000)
  // 0xfb/0xff bytes make '-' and '_' in URL-safe base64, which a data URL must not carry.
  const customer = Buffer.concat([MP3_FRAME, Buffer.from([0xfb])])
  const payload = {
    model: 'gpt-4o-transcribe-diarize',
    audio: dataUri('audio/wav', wav(4000)),
    'response-format': 'diarized_json',
    'known-speaker-names': ['agent', 'customer'],
    'known-speaker-references': [
      dataUri('audio/x-wav', agent),
      `data:application/octet-stream;base64,${customer.toString('base64url')}`,
    ],
  }
  const res = await app.inject({ method: 'POST', url: URL, payload })
  assert.equal(res.statusCode, 200, res.body)
  const sent = upstream.requests[0]!
  assert.deepEqual(textParts(sent), [
    ['model', 'gpt-4o-transcribe-diarize'],
    ['response_format', 'diarized_json'],
    ['known_speaker_names[]', 'agent'],
    ['known_speaker_names[]', 'customer'],
    ['known_speaker_references[]', dataUri('audio/wav', agent)],
    ['known_speaker_references[]', dataUri('audio/mpeg', customer)],
    ['chunking_strategy', 'auto'],
  ])
  assert.deepEqual(
    res.json().segments.map((segment: { speaker: string }) => segment.speaker),
    ['agent', 'customer'],
    'the stand-in labels the known speakers by name, as OpenAI does',
  )
})

test('known speakers that do not pair up, are too many, are no audio or go elsewhere: a 400 naming it', async (t) => {
  const reference = dataUri('audio/wav', wav())
  const diarize = { model: 'gpt-4o-transcribe-diarize' }
  const speakers = (names: string[], references: string[]) => ({
    ...diarize,
    'known-speaker-names': names,
    'known-speaker-references': references,
  })
  await assertRefused(t, [
    ['names without references', { ...diarize, 'known-speaker-names': ['agent'] }, '/known-speaker-references'],
    ['references without names', { ...diarize, 'known-speaker-references': [reference] }, '/known-speaker-names'],
    ['two names, one reference', speakers(['agent', 'customer'], [reference]), '/known-speaker-references'],
    ['five names', speakers(['a', 'b', 'c', 'd', 'e'], Array(5).fill(reference)), '/known-speaker-names'],
    ['five references', speakers(['a', 'b', 'c', 'd', 'e'], Array(5).fill(reference)), '/known-speaker-references'],
    [
      'an image as a reference',
      speakers(['a', 'b'], [reference, dataUri('audio/wav', PNG)]),
      '/known-speaker-references/1',
    ],
    ['bare base64 as a reference', speakers(['a'], [wav().toString('base64')]), '/known-speaker-references/0'],
    ['a reference that is no base64', speakers(['a'], ['data:audio/wav,RIFF']), '/known-speaker-references/0'],
    [
      'a reference of text bytes',
      speakers(['a'], [dataUri('audio/wav', Buffer.from('hello'))]),
      '/known-speaker-references/0',
    ],
    ['an empty speaker name', speakers([''], [reference]), '/known-speaker-names/0'],
    [
      'known speakers for gpt-4o-transcribe',
      { ...speakers(['a'], [reference]), model: 'gpt-4o-transcribe' },
      '/known-speaker-names',
    ],
    [
      'known speakers for whisper-1',
      { ...speakers(['a'], [reference]), model: 'whisper-1' },
      '/known-speaker-references',
    ],
  ])
})

test('the newer fields are checked together: every problem named in one 400', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const payload = {
    model: 'gpt-4o-transcribe-diarize',
    audio: dataUri('audio/wav', wav()),
    include: ['logprobs'],
    'known-speaker-names': ['agent', 'customer'],
    'known-speaker-references': [dataUri('audio/wav', PNG)],
  }
  const res = await app.inject({ method: 'POST', url: URL, payload })
  assert.equal(res.statusCode, 400, res.body)
  assert.deepEqual(res.json().error.details, [
    {
      field: 'include',
      path: '/include',
      message: 'is for gpt-4o-transcribe and gpt-4o-mini-transcribe only, not gpt-4o-transcribe-diarize',
    },
    {
      field: 'known-speaker-references',
      path: '/known-speaker-references',
      message: 'must hold one recording per known-speaker-names item: 2, not 1',
    },
    {
      field: 'known-speaker-references.0',
      path: '/known-speaker-references/0',
      message: 'is not flac, mp3, mp4, mpeg, mpga, m4a, ogg, wav or webm audio (found image/png)',
    },
  ])
  assert.equal(upstream.requests.length, 0)
})
