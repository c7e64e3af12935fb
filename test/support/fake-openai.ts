/**
 * A stand-in for the OpenAI REST API, for tests.
 *
 * It is a real HTTP server (node:http, 127.0.0.1, ephemeral port) that answers the five
 * operations our service calls the way OpenAI does, records every request it receives
 * byte-for-byte, and checks each request body against OpenAI's published OpenAPI contract
 * (the part of it committed in `test/contract/`). Contract breaches get a 400 in OpenAI's error
 * shape and are collected in `fake.violations`, so a test can end with
 * `assert.deepEqual(fake.violations, [])`.
 *
 * Faults are scripted with `fake.enqueue(...)` (FIFO, optionally per path): HTTP errors,
 * hangs, connection resets, malformed JSON, truncated streams, slow answers, custom handlers.
 * A scripted behaviour wins over the 400/401 a bad request would get (the breach is still
 * recorded in `violations`).
 *
 *   const fake = await startFakeOpenAI();            // contract loaded + compiled here, once per process
 *   // point the service at fake.url ('http://127.0.0.1:PORT/v1') with any 'Bearer ...' key
 *   fake.enqueue({ status: 429, headers: { 'retry-after': '7' }, body: openAIError(429, 'Rate limit reached') });
 *   ...
 *   assert.deepEqual(fake.violations, []);
 *   assert.deepEqual(fake.lastRequest()!.json, {...});   // what reached "OpenAI"
 *   await fake.close();
 *
 * `npm run generate` cuts the contract out of OpenAI's openapi.yaml (scripts/openai-contract.ts).
 */
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { unescapePointer } from '../../scripts/json-pointer.ts';
import { formToContractObject } from './fake-openai/contract-form.ts';
import { describeContractErrors, loadOpenAIContract, operationOf, validateAgainstOpenAIContract } from './fake-openai/contract.ts';
import { wavHeader } from './wav.ts';

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

export interface RecordedFile {
  filename: string;
  type: string;
  data: Buffer;
}

export interface RecordedForm {
  /** Text parts by name (a repeated name keeps its last value; see `entries` for all). */
  fields: Record<string, string>;
  /** File parts by name. */
  files: Record<string, RecordedFile>;
  /** Every part in the order received. */
  entries: Array<[name: string, value: string | RecordedFile]>;
}

export interface RecordedRequest {
  method: string;
  /** Path including the query string, e.g. '/v1/chat/completions'. */
  path: string;
  headers: IncomingHttpHeaders;
  /** Exact bytes of the request body. */
  raw: Buffer;
  /** Parsed body when the content-type is JSON and it parsed. */
  json?: any;
  /** Parsed body when the content-type is multipart/form-data and it parsed. */
  form?: RecordedForm;
  /** True once the client closed the connection before the stand-in finished answering. */
  aborted: boolean;
  /** The `x-request-id` the stand-in answered with. */
  requestId: string;
  /** Contract errors for this request (null when it satisfied the contract or was not checked). */
  contractErrors: unknown[] | null;
  /** What was sent back (filled in as the answer is written; partial for truncated answers). */
  responseStatus?: number;
  responseHeaders?: Record<string, string>;
  responseBody?: Buffer;
  /** The scripted behaviour that answered this request, if any. */
  behaviour?: Behaviour;
  receivedAt: number;
}

export type CustomHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  recorded: RecordedRequest,
) => void | Promise<void>;

interface BehaviourBase {
  /** Only a request to this path takes the behaviour ('/v1/chat/completions' or '/chat/completions'). */
  path?: string;
  /** How many requests the behaviour answers before it leaves the queue (default 1). */
  times?: number;
}
/** Answer with this status; without `body`, an OpenAI error for >= 400, the normal answer for 2xx. */
export interface StatusBehaviour extends BehaviourBase {
  kind?: 'status';
  status: number;
  body?: object | string;
  headers?: Record<string, string>;
}
export interface HangBehaviour extends BehaviourBase {
  kind: 'hang';
}
export interface ResetBehaviour extends BehaviourBase {
  kind: 'reset';
}
export interface MalformedJsonBehaviour extends BehaviourBase {
  kind: 'malformed-json';
}
export interface TruncatedStreamBehaviour extends BehaviourBase {
  kind: 'truncated-stream';
  /** How many chunks (SSE events / audio chunks) to send first (default: about half). */
  afterChunks?: number;
  /** Stall (keep the connection open, send nothing more) instead of destroying the socket. */
  stall?: boolean;
}
export interface SlowBehaviour extends BehaviourBase {
  kind: 'slow';
  delayMs: number;
}
export interface CustomBehaviour extends BehaviourBase {
  kind: 'custom';
  handler: CustomHandler;
}
export type Behaviour =
  | StatusBehaviour
  | HangBehaviour
  | ResetBehaviour
  | MalformedJsonBehaviour
  | TruncatedStreamBehaviour
  | SlowBehaviour
  | CustomBehaviour;

export interface Violation {
  path: string;
  errors: unknown[];
}

export interface FakeOpenAI {
  /** Base URL including '/v1', e.g. 'http://127.0.0.1:54321/v1'. */
  url: string;
  /** 'http://127.0.0.1:54321' */
  origin: string;
  requests: RecordedRequest[];
  violations: Violation[];
  /** The PNG every image answer carries (output_format png). */
  png: Buffer;
  enqueue(b: Behaviour): void;
  /** Number of scripted behaviours not yet used. */
  pendingBehaviours(): number;
  /** Replace the default answer for a path persistently (undefined restores the default). */
  setHandler(path: string, handler: CustomHandler | undefined): void;
  /** Clear requests, violations and the behaviour queue (handlers from setHandler stay). */
  reset(): void;
  /** Close the server and destroy every open socket (hung ones too). */
  close(): Promise<void>;
  lastRequest(): RecordedRequest | undefined;
  /** Resolve once at least `count` requests were recorded (rejects after timeoutMs). */
  waitForRequests(count: number, timeoutMs?: number): Promise<RecordedRequest[]>;
  /** Resolve once `condition()` is true (polled; rejects after timeoutMs). */
  waitFor(condition: () => boolean, timeoutMs?: number): Promise<void>;
}

export interface FakeOpenAIOptions {
  /** Check request bodies against the OpenAPI contract (default true). */
  validate?: boolean;
  /** Require an `Authorization: Bearer` header (default true). */
  requireAuth?: boolean;
  /** When set, the bearer token must equal it (401 invalid_api_key otherwise). */
  apiKey?: string;
  /** Pause between streamed chunks, in ms (default 1). */
  chunkDelayMs?: number;
  /** Keep every request in `requests` (default true); off for long load runs. */
  record?: boolean;
}

// ---------------------------------------------------------------------------------------------
// OpenAI error bodies
// ---------------------------------------------------------------------------------------------

function defaultErrorType(status: number): string {
  if (status === 429) return 'requests';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/**
 * OpenAI's error body: `{"error":{"message","type","param","code"}}`.
 * `type` defaults by status (429 'requests', 5xx 'server_error', else 'invalid_request_error');
 * `code` defaults to 'rate_limit_exceeded' for 429 and null otherwise (pass null to force null).
 */
export function openAIError(status: number, message: string, type?: string, code?: string | null): object {
  return {
    error: {
      message,
      type: type ?? defaultErrorType(status),
      param: null,
      code: code === undefined ? (status === 429 ? 'rate_limit_exceeded' : null) : code,
    },
  };
}

const DEFAULT_ERROR_MESSAGES: Record<number, string> = {
  400: 'Bad request.',
  401: 'Incorrect API key provided: sk-fake***. You can find your API key at https://platform.openai.com/account/api-keys.',
  403: 'Country, region, or territory not supported',
  404: 'The model does not exist or you do not have access to it.',
  429: 'Rate limit reached for requests. Please try again in 7s.',
  500: 'The server had an error while processing your request. Sorry about that!',
  502: 'Bad gateway.',
  503: 'The engine is currently overloaded, please try again later.',
  504: 'Gateway timeout.',
};

// ---------------------------------------------------------------------------------------------
// The contract: test/contract/openai-contract.json, compiled by ./openai-contract.ts
// ---------------------------------------------------------------------------------------------

export {
  contractStats,
  loadOpenAIContract,
  validateAgainstOpenAIContract,
  validateOpenAIComponent,
  validateOpenAIResponse,
  type ContractStats,
} from './fake-openai/contract.ts';
export { formToContractObject } from './fake-openai/contract-form.ts';

// ---------------------------------------------------------------------------------------------
// Deterministic content
// ---------------------------------------------------------------------------------------------

const tokenCount = (text: string): number => (text ? Math.max(1, Math.ceil(text.length / 4)) : 0);

function sha256(...parts: string[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest();
}

/** A deterministic byte stream of `length` bytes seeded by `seed` (sha256 in counter mode). */
function patternBytes(seed: string, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let off = 0, i = 0; off < length; i++) {
    const block = sha256(seed, String(i));
    off += block.copy(out, off, 0, Math.min(block.length, length - off));
  }
  return out;
}

function textOfContent(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((p: any) => (typeof p === 'string' ? p : p?.type === 'text' || typeof p?.text === 'string' ? p.text : ''))
      .filter(Boolean)
      .join(' ');
  }
  return '';
}

/** A small value satisfying a (user-supplied) JSON schema: tool arguments, json_schema answers. */
function sampleFromSchema(schema: any, root: any = schema, depth = 0): unknown {
  if (!schema || typeof schema !== 'object' || depth > 8) return null;
  if (typeof schema.$ref === 'string' && schema.$ref.startsWith('#/')) {
    let node: any = root;
    for (const p of schema.$ref.slice(2).split('/').map(unescapePointer)) node = node?.[p];
    return sampleFromSchema(node, root, depth + 1);
  }
  if ('const' in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0];
  if (schema.default !== undefined) return schema.default;
  for (const k of ['anyOf', 'oneOf']) {
    if (Array.isArray(schema[k]) && schema[k].length) {
      const nonNull = schema[k].find((b: any) => b?.type !== 'null') ?? schema[k][0];
      return sampleFromSchema(nonNull, root, depth + 1);
    }
  }
  if (Array.isArray(schema.allOf)) {
    return Object.assign({}, ...schema.allOf.map((b: any) => sampleFromSchema(b, root, depth + 1)));
  }
  const type = Array.isArray(schema.type) ? schema.type.find((t: string) => t !== 'null') : schema.type;
  switch (type ?? (schema.properties ? 'object' : undefined)) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries<any>(schema.properties ?? {})) out[k] = sampleFromSchema(v, root, depth + 1);
      return out;
    }
    case 'array': {
      const n = Math.max(1, schema.minItems ?? 1);
      return Array.from({ length: n }, () => sampleFromSchema(schema.items, root, depth + 1));
    }
    case 'string':
      return schema.format === 'date' ? '2024-01-01' : schema.format === 'date-time' ? '2024-01-01T00:00:00Z' : 'example';
    case 'integer':
      return typeof schema.minimum === 'number' ? Math.ceil(schema.minimum) : 1;
    case 'number':
      return typeof schema.minimum === 'number' ? schema.minimum : 1.5;
    case 'boolean':
      return true;
    case 'null':
      return null;
    default:
      return {};
  }
}

/** The 'Content-Type' OpenAI answers /audio/speech with, per response_format. */
export const SPEECH_CONTENT_TYPES: Record<string, string> = {
  mp3: 'audio/mpeg',
  opus: 'audio/opus',
  aac: 'audio/aac',
  flac: 'audio/flac',
  wav: 'audio/wav',
  pcm: 'audio/pcm',
};

const SPEECH_SAMPLE_RATE = 24000;

/**
 * The exact bytes the stand-in answers POST /audio/speech with for this request body: a
 * recognisable header for the format ('ID3' mp3, 'OggS' opus, ADTS aac, 'fLaC', a valid RIFF/WAVE
 * 24 kHz mono 16-bit header, none for pcm) then a pattern derived from model/voice/input/speed.
 */
export function expectedSpeechBytes(body: any): Buffer {
  const format: string = body?.response_format ?? 'mp3';
  const voice = typeof body?.voice === 'string' ? body.voice : JSON.stringify(body?.voice ?? null);
  const input: string = typeof body?.input === 'string' ? body.input : '';
  const seed = [body?.model, voice, input, body?.speed ?? 1, body?.instructions ?? '', format].join('|');
  let len = 2048 + 32 * Buffer.byteLength(input);
  if (format === 'wav' || format === 'pcm') len -= len % 2; // whole 16-bit samples
  const payload = patternBytes(seed, len);
  const headers: Record<string, Buffer> = {
    mp3: Buffer.from([0x49, 0x44, 0x33, 0x04, 0, 0, 0, 0, 0, 0]),
    opus: Buffer.concat([Buffer.from('OggS', 'ascii'), Buffer.from([0, 2]), Buffer.alloc(22), Buffer.from('OpusHead', 'ascii')]),
    aac: Buffer.from([0xff, 0xf1, 0x50, 0x80, 0x00, 0x1f, 0xfc]),
    flac: Buffer.concat([Buffer.from('fLaC', 'ascii'), Buffer.from([0x80, 0, 0, 0x22])]),
    wav: wavHeader(len, SPEECH_SAMPLE_RATE),
    pcm: Buffer.alloc(0),
  };
  return Buffer.concat([headers[format] ?? Buffer.alloc(0), payload]);
}

/** A deterministic unit vector of `dims` floats for `text`. */
function embeddingFor(model: string, text: string, dims: number): number[] {
  const bytes = patternBytes(`${model}|${text}`, dims * 4);
  const v: number[] = new Array(dims);
  let norm = 0;
  for (let i = 0; i < dims; i++) {
    const x = bytes.readUInt32LE(i * 4) / 0xffffffff - 0.5;
    v[i] = x;
    norm += x * x;
  }
  norm = Math.sqrt(norm) || 1;
  for (let i = 0; i < dims; i++) v[i] = Math.fround(v[i]! / norm);
  return v;
}

const imageCache = new Map<string, Promise<Buffer>>();
/** The image the stand-in returns: 8×8, OpenAI green (#10a37f); made once per format with sharp. */
export function fakeImageBytes(format: 'png' | 'jpeg' | 'webp' = 'png'): Promise<Buffer> {
  let p = imageCache.get(format);
  if (!p) {
    p = import('sharp').then(({ default: sharp }) =>
      sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 16, g: 163, b: 127 } } })
        .toFormat(format)
        .toBuffer(),
    );
    imageCache.set(format, p);
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------------------------

interface Reply {
  status: number;
  headers: Record<string, string>;
  /** Written one after another with a short pause; a single chunk gets a content-length. */
  chunks: Buffer[];
  streamed: boolean;
}

const JSON_TYPE = 'application/json';
const SSE_TYPE = 'text/event-stream; charset=utf-8';

function jsonReply(status: number, body: unknown, headers: Record<string, string> = {}): Reply {
  return { status, headers: { 'content-type': JSON_TYPE, ...headers }, chunks: [Buffer.from(JSON.stringify(body))], streamed: false };
}

function errorReply(status: number, message: string, type?: string, code?: string | null): Reply {
  return jsonReply(status, openAIError(status, message, type, code));
}

function sseReply(events: unknown[], done = true): Reply {
  const chunks = events.map((e) => Buffer.from(`data: ${JSON.stringify(e)}\n\n`));
  if (done) chunks.push(Buffer.from('data: [DONE]\n\n'));
  return { status: 200, headers: { 'content-type': SSE_TYPE, 'cache-control': 'no-cache' }, chunks, streamed: true };
}

/** Split text into about `parts` pieces at spaces (joined they give the text back exactly). */
function splitText(text: string, parts = 3): string[] {
  if (!text) return [];
  const words = text.match(/\S+\s*|\s+/g) ?? [text];
  const per = Math.max(1, Math.ceil(words.length / parts));
  const out: string[] = [];
  for (let i = 0; i < words.length; i += per) out.push(words.slice(i, i + per).join(''));
  return out;
}

let idCounter = 0;
const nextId = (prefix: string): string =>
  `${prefix}${(++idCounter).toString(36).padStart(6, '0')}${randomBytes(6).toString('hex')}`;
const now = (): number => Math.floor(Date.now() / 1000);

function chatReply(body: any): Reply {
  const model: string = body.model;
  const messages: any[] = Array.isArray(body.messages) ? body.messages : [];
  const lastUser = [...messages].reverse().find((m) => m?.role === 'user');
  const userText = textOfContent(lastUser?.content);
  const n: number = typeof body.n === 'number' && body.n > 0 ? body.n : 1;
  const promptTokens = messages.reduce((acc, m) => acc + 4 + tokenCount(textOfContent(m?.content)), 3);
  const maxTokens: number | undefined = body.max_completion_tokens ?? body.max_tokens ?? undefined;

  // Forced tool call?
  const tools: any[] = Array.isArray(body.tools) ? body.tools.filter((t: any) => t?.type === 'function' && t.function) : [];
  const choiceOpt = body.tool_choice;
  let tool: any;
  if (tools.length && choiceOpt === 'required') tool = tools[0];
  else if (tools.length && choiceOpt && typeof choiceOpt === 'object' && choiceOpt.type === 'function') {
    tool = tools.find((t) => t.function.name === choiceOpt.function?.name);
  }

  const rf = body.response_format;
  const contentFor = (i: number): string => {
    const suffix = i === 0 ? '' : ` (#${i + 1})`;
    if (rf?.type === 'json_object') return JSON.stringify({ echo: userText + suffix });
    if (rf?.type === 'json_schema' && rf.json_schema?.schema) return JSON.stringify(sampleFromSchema(rf.json_schema.schema));
    return `echo: ${userText}${suffix}`;
  };

  interface Choice { content: string | null; toolCall?: { id: string; name: string; arguments: string }; finish: string }
  const choices: Choice[] = [];
  for (let i = 0; i < n; i++) {
    if (tool) {
      const args = JSON.stringify(sampleFromSchema(tool.function.parameters ?? { type: 'object', properties: {} }));
      choices.push({ content: null, toolCall: { id: nextId('call_'), name: tool.function.name, arguments: args }, finish: 'tool_calls' });
    } else {
      let content = contentFor(i);
      let finish = 'stop';
      if (typeof maxTokens === 'number' && tokenCount(content) > maxTokens) {
        content = content.slice(0, Math.max(0, maxTokens * 4));
        finish = 'length';
      }
      choices.push({ content, finish });
    }
  }
  const completionTokens = choices.reduce(
    (acc, c) => acc + tokenCount(c.content ?? '') + (c.toolCall ? tokenCount(c.toolCall.arguments) + 5 : 0),
    0,
  );
  const usage = {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  };
  const id = nextId('chatcmpl-');
  const created = now();
  const common = (object: string): Record<string, unknown> => ({
    id, object, created, model, service_tier: 'default', system_fingerprint: 'fp_fake0openai',
  });

  if (body.stream === true) {
    const includeUsage = body.stream_options?.include_usage === true;
    const base = { ...common('chat.completion.chunk'), ...(includeUsage ? { usage: null } : {}) };
    const chunk = (index: number, delta: object, finish: string | null = null): object => ({
      ...base,
      choices: [{ index, delta, logprobs: null, finish_reason: finish }],
    });
    const events: object[] = [];
    choices.forEach((c, index) => {
      if (c.toolCall) {
        const { id: callId, name, arguments: args } = c.toolCall;
        events.push(chunk(index, {
          role: 'assistant', content: null, refusal: null,
          tool_calls: [{ index: 0, id: callId, type: 'function', function: { name, arguments: '' } }],
        }));
        const pieces = args.length > 2 ? [args.slice(0, Math.ceil(args.length / 2)), args.slice(Math.ceil(args.length / 2))] : [args];
        for (const piece of pieces) events.push(chunk(index, { tool_calls: [{ index: 0, function: { arguments: piece } }] }));
      } else {
        events.push(chunk(index, { role: 'assistant', content: '', refusal: null }));
        for (const piece of splitText(c.content ?? '')) events.push(chunk(index, { content: piece }));
      }
      events.push(chunk(index, {}, c.finish));
    });
    if (includeUsage) events.push({ ...base, choices: [], usage });
    return sseReply(events);
  }

  return jsonReply(200, {
    ...common('chat.completion'),
    choices: choices.map((c, index) => ({
      index,
      message: {
        role: 'assistant',
        content: c.content,
        refusal: null,
        annotations: [],
        ...(c.toolCall
          ? { tool_calls: [{ id: c.toolCall.id, type: 'function', function: { name: c.toolCall.name, arguments: c.toolCall.arguments } }] }
          : {}),
      },
      logprobs: null,
      finish_reason: c.finish,
    })),
    usage,
  });
}

function embeddingsReply(body: any): Reply {
  const model: string = body.model;
  const dims: number =
    typeof body.dimensions === 'number' ? body.dimensions : model === 'text-embedding-3-large' ? 3072 : 1536;
  const input = body.input;
  // string → 1; string[] → n; number[] (one token list) → 1; number[][] → n
  let items: Array<{ key: string; tokens: number }>;
  if (typeof input === 'string') items = [{ key: input, tokens: tokenCount(input) }];
  else if (Array.isArray(input) && input.every((x) => typeof x === 'number')) {
    items = [{ key: JSON.stringify(input), tokens: input.length }];
  } else if (Array.isArray(input)) {
    items = input.map((x: unknown) =>
      typeof x === 'string' ? { key: x, tokens: tokenCount(x) } : { key: JSON.stringify(x), tokens: Array.isArray(x) ? x.length : 1 },
    );
  } else items = [];
  const base64 = body.encoding_format === 'base64';
  const data = items.map((it, index) => {
    const v = embeddingFor(model, it.key, dims);
    return {
      object: 'embedding',
      index,
      embedding: base64 ? Buffer.from(new Float32Array(v).buffer).toString('base64') : v,
    };
  });
  const tokens = items.reduce((a, it) => a + it.tokens, 0);
  return jsonReply(200, { object: 'list', data, model, usage: { prompt_tokens: tokens, total_tokens: tokens } });
}

function transcriptionReply(form: RecordedForm | undefined, obj: Record<string, any>): Reply {
  const file = form?.files.file;
  const model = String(obj.model ?? '');
  const bytes = file?.data.length ?? 0;
  const filename = file?.filename ?? 'unknown';
  const text = `Transcript of ${filename} (${bytes} bytes)${obj.language ? ` in ${obj.language}` : ''}.`;
  const duration = Math.max(1, Math.round(bytes / 3200) / 10); // pretend 32 kB/s
  const diarize = /^gpt-4o(-mini)?-transcribe-diarize/.test(model);
  const chunked = (form?.entries ?? []).some(([name]) => name === 'chunking_strategy' || name.startsWith('chunking_strategy['));
  if (diarize && !chunked && duration > 30) {
    // OpenAI's rule for the diarize model: longer audio must be cut into chunks.
    return errorReply(400, 'chunking_strategy is required for diarization models when the input audio is longer than 30 seconds.');
  }
  const tokenModel = model.startsWith('gpt-');
  const usage = tokenModel
    ? {
        type: 'tokens',
        input_tokens: Math.max(1, Math.ceil(duration * 10)),
        input_token_details: { text_tokens: 0, audio_tokens: Math.max(1, Math.ceil(duration * 10)) },
        output_tokens: tokenCount(text),
        total_tokens: Math.max(1, Math.ceil(duration * 10)) + tokenCount(text),
      }
    : { type: 'duration', seconds: Math.ceil(duration) };
  if (obj.stream === true) {
    const events: object[] = splitText(text).map((delta) => ({ type: 'transcript.text.delta', delta }));
    events.push({ type: 'transcript.text.done', text, ...(tokenModel ? { usage } : {}) });
    return sseReply(events, false);
  }
  const format = obj.response_format ?? 'json';
  const ts = (s: number, sep: string): string => {
    const ms = Math.round(s * 1000);
    const p = (x: number, w = 2): string => String(x).padStart(w, '0');
    return `${p(Math.floor(ms / 3600000))}:${p(Math.floor(ms / 60000) % 60)}:${p(Math.floor(ms / 1000) % 60)}${sep}${p(ms % 1000, 3)}`;
  };
  switch (format) {
    case 'text':
      return { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, chunks: [Buffer.from(`${text}\n`)], streamed: false };
    case 'srt':
      return {
        status: 200,
        headers: { 'content-type': 'text/plain; charset=utf-8' },
        chunks: [Buffer.from(`1\n${ts(0, ',')} --> ${ts(duration, ',')}\n${text}\n\n`)],
        streamed: false,
      };
    case 'vtt':
      return {
        status: 200,
        headers: { 'content-type': 'text/vtt; charset=utf-8' },
        chunks: [Buffer.from(`WEBVTT\n\n${ts(0, '.')} --> ${ts(duration, '.')}\n${text}\n\n`)],
        streamed: false,
      };
    case 'verbose_json': {
      const grans: string[] = Array.isArray(obj.timestamp_granularities) ? obj.timestamp_granularities : ['segment'];
      const words = text.split(/\s+/).filter(Boolean);
      return jsonReply(200, {
        task: 'transcribe',
        language: obj.language ?? 'english',
        duration,
        text,
        ...(grans.includes('word')
          ? { words: words.map((w, i) => ({ word: w, start: (i * duration) / words.length, end: ((i + 1) * duration) / words.length })) }
          : {}),
        ...(grans.includes('segment')
          ? {
              segments: [{
                id: 0, seek: 0, start: 0, end: duration, text: ` ${text}`, tokens: [50364, 1012, 50414],
                temperature: obj.temperature ?? 0, avg_logprob: -0.25, compression_ratio: 1.1, no_speech_prob: 0.01,
              }],
            }
          : {}),
        usage: { type: 'duration', seconds: Math.ceil(duration) },
      });
    }
    case 'diarized_json': {
      // Two speakers, taking turns at the middle word: A then B.
      const words = text.split(' ');
      const half = Math.ceil(words.length / 2);
      const turns = [words.slice(0, half).join(' '), words.slice(half).join(' ')].filter(Boolean);
      const turnEnd = (i: number): number => (i === turns.length - 1 ? duration : Math.round((duration * half) / words.length * 100) / 100);
      return jsonReply(200, {
        task: 'transcribe',
        duration,
        text,
        segments: turns.map((turn, i) => ({
          type: 'transcript.text.segment', id: `seg_${i}`, start: i === 0 ? 0 : turnEnd(0), end: turnEnd(i), text: turn, speaker: 'AB'[i]!,
        })),
        usage,
      });
    }
    default:
      return jsonReply(200, { text, usage });
  }
}

function speechReply(body: any): Reply {
  const bytes = expectedSpeechBytes(body);
  const CHUNK = 4096;
  const pieces: Buffer[] = [];
  for (let off = 0; off < bytes.length; off += CHUNK) pieces.push(bytes.subarray(off, off + CHUNK));
  if (body.stream_format === 'sse') {
    const events: object[] = pieces.map((p) => ({ type: 'speech.audio.delta', audio: p.toString('base64') }));
    const inTok = tokenCount(String(body.input ?? ''));
    const outTok = Math.ceil(bytes.length / 100);
    events.push({ type: 'speech.audio.done', usage: { input_tokens: inTok, output_tokens: outTok, total_tokens: inTok + outTok } });
    return sseReply(events, false);
  }
  const format: string = body.response_format ?? 'mp3';
  return { status: 200, headers: { 'content-type': SPEECH_CONTENT_TYPES[format] ?? 'application/octet-stream' }, chunks: pieces, streamed: true };
}

const GPT_IMAGE = /^(gpt-image|chatgpt-image)/;

async function imagesReply(body: any, origin: string, served: Map<string, { data: Buffer; type: string }>): Promise<Reply> {
  const model: string = body.model ?? 'dall-e-2';
  const n: number = typeof body.n === 'number' ? body.n : 1;
  const gptImage = GPT_IMAGE.test(model);
  const format: 'png' | 'jpeg' | 'webp' = gptImage && (body.output_format === 'jpeg' || body.output_format === 'webp') ? body.output_format : 'png';
  const img = await fakeImageBytes(format);
  // dall-e-* answer with a URL unless asked for b64_json; gpt-image-* always answer b64_json.
  const asUrl = !gptImage && body.response_format !== 'b64_json';
  const data = Array.from({ length: n }, () => {
    const item: Record<string, string> = {};
    if (asUrl) {
      const name = `${nextId('img-')}.${format}`;
      served.set(`/images/${name}`, { data: img, type: `image/${format}` });
      item.url = `${origin}/images/${name}`;
    } else item.b64_json = img.toString('base64');
    if (model === 'dall-e-3') item.revised_prompt = `A detailed rendering of: ${String(body.prompt ?? '')}`;
    return item;
  });
  const out: Record<string, unknown> = { created: now(), data };
  if (gptImage) {
    const size = ['1024x1024', '1024x1536', '1536x1024'].includes(body.size) ? body.size : '1024x1024';
    const quality = ['low', 'medium', 'high'].includes(body.quality) ? body.quality : 'medium';
    const textTokens = tokenCount(String(body.prompt ?? ''));
    Object.assign(out, {
      background: body.background === 'transparent' ? 'transparent' : 'opaque',
      output_format: format,
      size,
      quality,
      usage: {
        input_tokens: textTokens,
        input_tokens_details: { text_tokens: textTokens, image_tokens: 0 },
        output_tokens: 272 * n,
        total_tokens: textTokens + 272 * n,
      },
    });
  }
  return jsonReply(200, out);
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

const JSON_PARSE_ERROR =
  "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. " +
  'The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix ' +
  'this, please contact us through our help center at help.openai.com.)';
const NO_KEY_ERROR =
  "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth " +
  '(i.e. Authorization: Bearer YOUR_KEY). You can obtain an API key from https://platform.openai.com/account/api-keys.';

function lowerKeys(h: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {})) out[k.toLowerCase()] = v;
  return out;
}

function normalizePath(p: string): string {
  let q = p.split('?')[0]!;
  if (q.length > 1 && q.endsWith('/')) q = q.slice(0, -1);
  return q;
}
function pathMatches(target: string, pathname: string): boolean {
  const t = normalizePath(target);
  return t === pathname || `/v1${t}` === pathname;
}

async function parseMultipart(raw: Buffer, contentType: string): Promise<RecordedForm> {
  const fd = await new Response(raw, { headers: { 'content-type': contentType } }).formData();
  const form: RecordedForm = { fields: {}, files: {}, entries: [] };
  for (const [name, value] of fd.entries()) {
    if (typeof value === 'string') {
      form.fields[name] = value;
      form.entries.push([name, value]);
    } else {
      const f: RecordedFile = { filename: value.name, type: value.type, data: Buffer.from(await value.arrayBuffer()) };
      form.files[name] = f;
      form.entries.push([name, f]);
    }
  }
  return form;
}

export async function startFakeOpenAI(opts: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const validate = opts.validate !== false;
  const requireAuth = opts.requireAuth !== false;
  const chunkDelayMs = opts.chunkDelayMs ?? 1;
  // Load + compile before the first request, so a test's client timeout never races the parse.
  if (validate) loadOpenAIContract();
  const png = await fakeImageBytes('png');

  const requests: RecordedRequest[] = [];
  const violations: Violation[] = [];
  const queue: Array<{ b: Behaviour; left: number }> = [];
  const handlers = new Map<string, CustomHandler>();
  const served = new Map<string, { data: Buffer; type: string }>();
  const sockets = new Set<Socket>();
  const sleepers = new Set<() => void>();
  let closing = false;
  let closed: Promise<void> | undefined;
  let origin = '';

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      if (closing) return resolve();
      const wake = (): void => {
        clearTimeout(t);
        sleepers.delete(wake);
        resolve();
      };
      const t = setTimeout(wake, ms);
      sleepers.add(wake);
    });

  const takeBehaviour = (pathname: string): Behaviour | undefined => {
    const i = queue.findIndex((q) => q.b.path === undefined || pathMatches(q.b.path, pathname));
    if (i < 0) return undefined;
    const entry = queue[i]!;
    if (--entry.left <= 0) queue.splice(i, 1);
    return entry.b;
  };

  const server = createServer({ keepAliveTimeout: 5000 }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      // A bug in the stand-in itself: say so loudly rather than hang the test.
      console.error('fake-openai: handler failed', err);
      if (!res.headersSent && !res.destroyed) {
        const r = errorReply(500, `fake-openai internal error: ${(err as Error)?.message ?? err}`);
        res.writeHead(r.status, r.headers).end(r.chunks[0]);
      } else res.destroy();
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    let readFailed = false;
    try {
      for await (const c of req) chunks.push(c as Buffer);
    } catch {
      readFailed = true; // the client went away while sending the body
    }
    const raw = Buffer.concat(chunks);
    const url = req.url ?? '/';
    const pathname = normalizePath(url);
    const requestId = `req_${randomBytes(16).toString('hex')}`;
    const rec: RecordedRequest = {
      method: req.method ?? 'GET',
      path: url,
      headers: req.headers,
      raw,
      aborted: readFailed,
      requestId,
      contractErrors: null,
      receivedAt: Date.now(),
    };
    let destroyedByUs = false;
    res.on('close', () => {
      if (!res.writableFinished && !destroyedByUs && !closing) rec.aborted = true;
    });
    const destroy = (reset: boolean): void => {
      destroyedByUs = true;
      const s = req.socket;
      if (reset && typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
      else s.destroy();
    };

    // Parse what came in.
    const contentType = String(req.headers['content-type'] ?? '');
    let bodyProblem: string | undefined;
    if (/^application\/([\w.+-]+\+)?json\b/i.test(contentType)) {
      try {
        rec.json = JSON.parse(raw.toString('utf8'));
      } catch {
        bodyProblem = JSON_PARSE_ERROR;
      }
    } else if (/^multipart\/form-data\b/i.test(contentType)) {
      try {
        rec.form = await parseMultipart(raw, contentType);
      } catch (err) {
        bodyProblem = `Could not parse multipart form: ${(err as Error).message}`;
      }
    }
    if (opts.record !== false) requests.push(rec);
    if (readFailed) return;

    const op = operationOf(pathname.startsWith('/v1/') ? pathname : '/nope');
    const isPost = rec.method === 'POST';
    let problem: Reply | undefined;
    const violate = (errors: unknown[], reply: Reply): void => {
      violations.push({ path: url, errors });
      rec.contractErrors = errors;
      problem ??= reply;
    };

    if (op && isPost) {
      // Authentication (the contract's security: ApiKeyAuth, a bearer token).
      if (requireAuth) {
        const auth = req.headers.authorization;
        const m = typeof auth === 'string' ? /^Bearer\s+(\S.*)$/i.exec(auth) : null;
        if (!m) {
          violate(
            [{ keyword: 'security', message: auth ? `malformed Authorization header: ${auth.slice(0, 20)}` : 'missing Authorization: Bearer header' }],
            errorReply(401, auth ? `Incorrect API key provided: ${auth.slice(0, 12)}***.` : NO_KEY_ERROR, 'invalid_request_error', 'invalid_api_key'),
          );
        } else if (opts.apiKey !== undefined && m[1] !== opts.apiKey) {
          const k = m[1]!;
          violate(
            [{ keyword: 'security', message: 'API key does not match the one the stand-in was started with' }],
            errorReply(401, `Incorrect API key provided: ${k.slice(0, 3)}***${k.slice(-4)}.`, 'invalid_request_error', 'invalid_api_key'),
          );
        }
      }
      // The request body against the contract.
      if (validate) {
        const c = loadOpenAIContract();
        const wantType = c.prepared.operations[op]!.requestMediaType;
        let candidate: unknown;
        let parsed = false;
        if (bodyProblem) violate([{ keyword: 'body', message: bodyProblem }], errorReply(400, bodyProblem));
        else if (wantType === 'application/json' && rec.json !== undefined) ((candidate = rec.json), (parsed = true));
        else if (wantType === 'multipart/form-data' && rec.form) {
          candidate = formToContractObject(op, rec.form);
          parsed = true;
        } else {
          const msg = `Expected a ${wantType} body for POST ${op}, got content-type '${contentType || '(none)'}'.`;
          violate([{ keyword: 'content-type', message: msg }], errorReply(400, msg));
        }
        if (parsed) {
          const errors = validateAgainstOpenAIContract(op, candidate);
          if (errors) violate(errors, errorReply(400, describeContractErrors(errors)));
        }
      } else if (bodyProblem) problem = errorReply(400, bodyProblem);
    }

    const normal = async (): Promise<Reply> => {
      if (problem) return problem;
      if (op && isPost) {
        const body = rec.json ?? {};
        switch (op) {
          case '/chat/completions':
            return chatReply(body);
          case '/embeddings':
            return embeddingsReply(body);
          case '/audio/transcriptions':
            return transcriptionReply(rec.form, transcriptionParams(rec.form));
          case '/audio/speech':
            return speechReply(body);
          case '/images/generations':
            return imagesReply(body, origin, served);
        }
      }
      if (op) return { ...errorReply(405, `Method not allowed: ${rec.method} ${pathname}. Use POST.`), headers: { 'content-type': JSON_TYPE, allow: 'POST' } };
      const img = rec.method === 'GET' ? served.get(pathname) : undefined;
      if (img) return { status: 200, headers: { 'content-type': img.type }, chunks: [img.data], streamed: false };
      return errorReply(404, `Invalid URL (${rec.method} ${pathname})`);
    };

    const send = async (reply: Reply, cut?: { after: number; stall: boolean }): Promise<void> => {
      if (res.destroyed) return;
      const headers: Record<string, string> = {
        'x-request-id': requestId,
        'openai-version': '2020-10-01',
        'openai-processing-ms': '7',
        ...(reply.streamed ? {} : { 'content-length': String(reply.chunks.reduce((a, c) => a + c.length, 0)) }),
      };
      for (const [k, v] of Object.entries(reply.headers)) headers[k.toLowerCase()] = v;
      rec.responseStatus = reply.status;
      rec.responseHeaders = headers;
      rec.responseBody = Buffer.alloc(0);
      res.writeHead(reply.status, headers);
      let parts = reply.chunks;
      if (cut && parts.length < 2 && parts[0]) {
        // One chunk (a JSON body): cut it in half.
        const whole = parts[0];
        parts = [whole.subarray(0, Math.ceil(whole.length / 2)), whole.subarray(Math.ceil(whole.length / 2))];
      }
      for (let i = 0; i < parts.length; i++) {
        if (cut && i >= cut.after) {
          if (cut.stall) return; // keep the socket open, say nothing more (close() ends it)
          destroy(false);
          return;
        }
        if (res.destroyed) return;
        res.write(parts[i]);
        rec.responseBody = Buffer.concat([rec.responseBody, parts[i]!]);
        if (parts.length > 1 && i < parts.length - 1) await sleep(chunkDelayMs);
      }
      if (!res.destroyed) res.end();
    };

    const b = takeBehaviour(pathname);
    if (b) {
      rec.behaviour = b;
      switch (b.kind) {
        case 'hang':
          return;
        case 'reset':
          destroy(true);
          return;
        case 'custom':
          await b.handler(req, res, rec);
          return;
        case 'slow':
          await sleep(b.delayMs);
          if (closing || res.destroyed) return;
          return send(await normal());
        case 'malformed-json': {
          const r = await normal();
          const json = r.headers['content-type']?.startsWith(JSON_TYPE) && !r.streamed
            ? r.chunks[0]!.subarray(0, Math.max(1, Math.floor(r.chunks[0]!.length / 2)))
            : Buffer.from('{"id":"chatcmpl-broken","object":"chat.completion","choices":[{"index":0,"mess');
          return send({ status: 200, headers: { 'content-type': JSON_TYPE }, chunks: [json], streamed: false });
        }
        case 'truncated-stream': {
          const r = await normal();
          const total = r.chunks.length < 2 ? 2 : r.chunks.length;
          const after = Math.min(total - 1, Math.max(1, b.afterChunks ?? Math.floor(total / 2)));
          return send(r, { after, stall: b.stall === true });
        }
        default: {
          // { status, body?, headers? }
          const sb = b as StatusBehaviour;
          if (sb.body === undefined && sb.status < 300 && !problem) {
            const r = await normal();
            return send({ ...r, status: sb.status, headers: { ...r.headers, ...lowerKeys(sb.headers) } });
          }
          const body =
            sb.body === undefined
              ? JSON.stringify(openAIError(sb.status, DEFAULT_ERROR_MESSAGES[sb.status] ?? `HTTP ${sb.status}`))
              : typeof sb.body === 'string'
                ? sb.body
                : JSON.stringify(sb.body);
          const ct = typeof sb.body === 'string' ? 'text/plain; charset=utf-8' : JSON_TYPE;
          return send({ status: sb.status, headers: { 'content-type': ct, ...lowerKeys(sb.headers) }, chunks: [Buffer.from(body)], streamed: false });
        }
      }
    }

    const custom = [...handlers].find(([p]) => pathMatches(p, pathname))?.[1];
    if (custom && !problem) {
      await custom(req, res, rec);
      return;
    }
    return send(await normal());
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  origin = `http://127.0.0.1:${port}`;

  const fake: FakeOpenAI = {
    url: `${origin}/v1`,
    origin,
    requests,
    violations,
    png,
    enqueue(b) {
      if (b.kind === 'slow' && !(typeof b.delayMs === 'number' && b.delayMs >= 0)) throw new Error('slow needs delayMs');
      if ((b.kind === undefined || b.kind === 'status') && typeof (b as StatusBehaviour).status !== 'number') {
        throw new Error('fake-openai: enqueue needs a status or a kind');
      }
      queue.push({ b, left: Math.max(1, b.times ?? 1) });
    },
    pendingBehaviours: () => queue.length,
    setHandler(path, handler) {
      const p = normalizePath(path);
      if (handler) handlers.set(p, handler);
      else handlers.delete(p);
    },
    reset() {
      requests.length = 0;
      violations.length = 0;
      queue.length = 0;
    },
    close() {
      if (closed) return closed;
      closing = true;
      for (const wake of [...sleepers]) wake();
      closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      return closed;
    },
    lastRequest: () => requests[requests.length - 1],
    async waitForRequests(count, timeoutMs = 2000) {
      await fake.waitFor(() => requests.length >= count, timeoutMs).catch(() => {
        throw new Error(`fake-openai: expected ${count} request(s) within ${timeoutMs} ms, got ${requests.length}`);
      });
      return requests;
    },
    waitFor(condition, timeoutMs = 2000) {
      return new Promise<void>((resolve, reject) => {
        const start = Date.now();
        const tick = (): void => {
          let ok = false;
          try {
            ok = condition();
          } catch (err) {
            return reject(err as Error);
          }
          if (ok) return resolve();
          if (Date.now() - start >= timeoutMs) return reject(new Error(`fake-openai: condition not met within ${timeoutMs} ms`));
          setTimeout(tick, 5);
        };
        tick();
      });
    },
  };
  return fake;
}

/** The transcription parameters the answer depends on, read straight from the form (no contract needed). */
function transcriptionParams(form: RecordedForm | undefined): Record<string, any> {
  const out: Record<string, any> = {};
  for (const [name, value] of form?.entries ?? []) {
    if (typeof value !== 'string') continue;
    const key = name.replace(/\[\]$/, '');
    if (key === 'timestamp_granularities') (out[key] ??= []).push(value);
    else if (key === 'stream') out[key] = value === 'true';
    else if (key === 'temperature') out[key] = Number(value);
    else out[key] = value;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// OpenAI-compatible servers (vLLM, Ollama, LM Studio): the stand-in's chat answers, reshaped
// ---------------------------------------------------------------------------------------------

/** How an OpenAI-compatible server's chat answer departs from OpenAI's. */
export interface CompatibleChatOptions {
  /** End a stream without `data: [DONE]` (the connection still closes cleanly). */
  noDone?: boolean;
  /** Leave `index` out of every choice of every stream chunk. */
  noChoiceIndex?: boolean;
  /** Leave `type` out of every tool call, answered whole or in fragments. */
  noToolType?: boolean;
  /** `content: null` wherever a message or delta has no text. */
  nullContent?: boolean;
  /** No `usage` anywhere, even when the request asked for it. */
  noUsage?: boolean;
  /** Stream only the first this many events ([DONE] counted), then end cleanly: a cut-short answer. */
  events?: number;
}

/**
 * A custom handler answering /chat/completions as the stand-in does, reshaped the way some
 * OpenAI-compatible servers answer: `fake.enqueue({ kind: 'custom', handler: openAICompatibleChat({...}) })`.
 */
export function openAICompatibleChat(options: CompatibleChatOptions): CustomHandler {
  return (_req, res, recorded) => {
    const reply = chatReply(recorded.json ?? {});
    const reshaped = reply.streamed ? compatibleStream(reply.chunks, options) : [compatibleJson(reply.chunks[0]!, options)];
    const headers: Record<string, string> = { ...reply.headers };
    if (!reply.streamed) headers['content-length'] = String(reshaped[0]!.length);
    recorded.responseStatus = reply.status;
    recorded.responseHeaders = headers;
    recorded.responseBody = Buffer.concat(reshaped);
    res.writeHead(reply.status, headers);
    for (const chunk of reshaped) res.write(chunk);
    res.end();
  };
}

function compatibleStream(chunks: Buffer[], options: CompatibleChatOptions): Buffer[] {
  const out: Buffer[] = [];
  for (const chunk of chunks) {
    const data = chunk.toString('utf8').replace(/^data: /, '').trimEnd();
    if (data === '[DONE]') {
      if (!options.noDone) out.push(chunk);
      continue;
    }
    const event = JSON.parse(data);
    reshapeChoices(event, options, 'delta');
    if (options.noUsage) {
      delete event.usage;
      if (!event.choices.length) continue;
    }
    out.push(Buffer.from(`data: ${JSON.stringify(event)}\n\n`));
  }
  return options.events === undefined ? out : out.slice(0, options.events);
}

function compatibleJson(body: Buffer, options: CompatibleChatOptions): Buffer {
  const completion = JSON.parse(body.toString('utf8'));
  reshapeChoices(completion, options, 'message');
  if (options.noUsage) delete completion.usage;
  return Buffer.from(JSON.stringify(completion));
}

function reshapeChoices(answer: any, options: CompatibleChatOptions, key: 'delta' | 'message'): void {
  for (const choice of answer.choices ?? []) {
    if (options.noChoiceIndex && key === 'delta') delete choice.index;
    const message = choice[key] ?? {};
    if (options.nullContent && !message.content) message.content = null;
    if (options.noToolType) for (const call of message.tool_calls ?? []) delete call.type;
  }
}
