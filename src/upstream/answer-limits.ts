/**
 * How much of OpenAI's answers the service takes in, whatever OpenAI (or a compatible server,
 * or whatever answers at its address) sends. Past a bound the call fails as a 502
 * ERR_UPSTREAM_BAD_RESPONSE: a JSON error before the caller's answer started, the stream's
 * `error` event after; the upstream body is destroyed and nothing grows further.
 * docs/security.md lists these bounds; each leaves room above the largest answer OpenAI gives.
 */

const KiB = 1024
const MiB = 1024 * KiB

/** An error answer: OpenAI's message is in its first bytes, the rest is not read. */
export const ERROR_ANSWER_BYTES = 64 * KiB

/** One SSE event's data: a token's chunk is ~300 bytes; a transcript's done event with its logprobs, a few MB. */
export const SSE_EVENT_CHARACTERS = 8 * MiB

// Choices in a stream: the `n` asked for (schemas/tasks.yaml caps it at 128); OpenAI numbers them 0 to n - 1.

/** Tool calls in one streamed choice: far more than the parallel calls a model makes (of up to 128 tools). */
export const TOOL_CALLS_PER_CHOICE = 1024

/** A chat completion: 128k output tokens are ~0.5 MB of text, leaving room for n choices and tool calls. */
export const CHAT_ANSWER_BYTES = 64 * MiB

/** A streamed chat completion: each token is a ~300-byte chunk, so 128k output tokens stream as ~40 MB. */
export const CHAT_STREAM_BYTES = 128 * MiB

/** A transcription (JSON, text or stream): hours of audio with word timestamps, diarized segments or logprobs are ~10 MB. */
export const TRANSCRIPTION_ANSWER_BYTES = 64 * MiB

/** Speech: 4,096 characters at speed 0.25 are ~20 minutes, ~60 MB as 24 kHz 16-bit WAV or PCM. */
export const SPEECH_ANSWER_BYTES = 128 * MiB

/** Any answer read whole: V8 strings hold at most ~512 Mi characters. */
export const MAX_ANSWER_BYTES = 500 * MiB

/** Per embedding float: OpenAI prints each on an indented line of its own (~24 bytes); full doubles take ~30. */
const BYTES_PER_EMBEDDING_FLOAT = 40
/** The dimensions assumed when the request names none: OpenAI's largest is 3,072, compatible models' 4,096. */
const DEFAULT_EMBEDDING_DIMENSIONS = 4096
/** An embedding's own fields (`object`, `index`), and the answer's (`model`, `usage`). */
const EMBEDDING_OVERHEAD_BYTES = KiB
const ANSWER_OVERHEAD_BYTES = 64 * KiB

/** An embeddings answer for `inputs` inputs: 2,048 of 3,072 floats are ~150 MB as OpenAI prints them (242 MiB allowed). */
export function embeddingsAnswerBytes(inputs: number, dimensions: number | undefined): number {
  const perInput = (dimensions ?? DEFAULT_EMBEDDING_DIMENSIONS) * BYTES_PER_EMBEDDING_FLOAT + EMBEDDING_OVERHEAD_BYTES
  return Math.min(MAX_ANSWER_BYTES, inputs * perInput + ANSWER_OVERHEAD_BYTES)
}

/** Per generated image: a 3840x2160 RGBA PNG, even stored uncompressed, is 33 MB, 44 MB in base64. */
const BYTES_PER_IMAGE = 48 * MiB

/** An images answer for `n` images, each in base64. */
export function imagesAnswerBytes(n: number): number {
  return Math.min(MAX_ANSWER_BYTES, n * BYTES_PER_IMAGE + MiB)
}

/** A bound as people read it: `64 MiB`, `225 KiB`, `1.5 MiB`. */
export function formatBound(bytes: number): string {
  const [unit, size] = bytes >= MiB ? ['MiB', MiB] : bytes >= KiB ? ['KiB', KiB] : ['bytes', 1]
  return `${Number((bytes / size).toFixed(1))} ${unit}`
}
