import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** The model the warm-up asks for: one with a price, so the spend path runs as for real calls. */
export const WARM_UP_MODEL = 'gpt-4o-mini'

const TOKENS_PER_STREAM = 20

const chunk = (delta: object, finishReason: string | null, usage: object | null = null): string =>
  `data: ${JSON.stringify({
    id: 'chatcmpl-warm-up',
    object: 'chat.completion.chunk',
    created: 0,
    model: WARM_UP_MODEL,
    choices: usage ? [] : [{ index: 0, delta, finish_reason: finishReason }],
    usage,
  })}\n\n`

const USAGE = { prompt_tokens: 4, completion_tokens: TOKENS_PER_STREAM, total_tokens: 4 + TOKENS_PER_STREAM }

const CHAT_STREAM = [
  chunk({ role: 'assistant', content: '' }, null),
  ...Array.from({ length: TOKENS_PER_STREAM }, () => chunk({ content: ' ok' }, null)),
  chunk({}, 'stop'),
  chunk({}, null, USAGE),
  'data: [DONE]\n\n',
]

const CHAT_ANSWER = JSON.stringify({
  id: 'chatcmpl-warm-up',
  object: 'chat.completion',
  created: 0,
  model: WARM_UP_MODEL,
  choices: [{ index: 0, message: { role: 'assistant', content: 'ok', refusal: null }, finish_reason: 'stop' }],
  usage: USAGE,
})

const EMBEDDINGS_ANSWER = JSON.stringify({
  object: 'list',
  model: 'text-embedding-3-small',
  data: [{ object: 'embedding', index: 0, embedding: Array.from({ length: 64 }, (_, i) => i / 64 - 0.5) }],
  usage: { prompt_tokens: 2, total_tokens: 2 },
})

function answer(req: IncomingMessage, res: ServerResponse, body: string): void {
  if (req.url === '/v1/embeddings') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(EMBEDDINGS_ANSWER)
  } else if (req.url !== '/v1/chat/completions') {
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found"}}')
  } else if (body.includes('"stream":true')) {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    // One write per event, as OpenAI sends them: the relay's per-chunk path is what warms up.
    for (const event of CHAT_STREAM) res.write(event)
    res.end()
  } else {
    res.writeHead(200, { 'content-type': 'application/json' }).end(CHAT_ANSWER)
  }
}

/** An OpenAI stand-in on a loopback port that answers instantly, for the warm-up's calls only. */
export async function startWarmUpUpstream(): Promise<{ baseUrl: string; close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (part: string) => (body += part))
    req.on('end', () => answer(req, res, body))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    // Exclusive: in a cluster worker, a shared port would send one worker's calls to another's.
    server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, resolve)
  })
  const { port } = server.address() as AddressInfo
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
