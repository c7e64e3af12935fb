/**
 * What the load is sent to: the stand-in itself (direct), the bare forwarder, the service (built
 * and run as `npm start` runs it, default configuration) and Portkey; how each is started and
 * what a text-generation call to it looks like.
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { request } from 'undici'
import { ENV_SCHEMA } from '../src/config.ts'
import { imageAllocator } from './allocator.ts'
import { portkeyEntry } from './portkey.ts'
import { forkScript, freePort, ROOT, spawnServer, type Child } from './processes.ts'

export type Kind = 'stream' | 'json'
export type TargetName = 'direct' | 'forwarder' | 'service' | 'portkey'

export interface Call {
  path: string
  headers: Record<string, string>
  body: string
}

export interface Target {
  name: TargetName
  origin: string
  /** The proxy's process (none for direct). */
  child?: Child
  /** Text-generation call number `n`; `instant` has the stand-in answer at once. */
  call(kind: Kind, instant: boolean, n?: number): Call
  /** What one token event, and the end of a stream, look like in its answers. */
  marks: { token: Buffer; end: Buffer }
}

/** The call's number goes in the prompt, which every proxy forwards: the stand-in picks its delay by it. */
const prompt = (n: number | undefined): string => (n === undefined ? 'Say hello.' : `Say hello. (call ${n})`)
const OPENAI_MARKS = { token: Buffer.from('"delta":{"content":"'), end: Buffer.from('data: [DONE]') }
const SERVICE_MARKS = { token: Buffer.from('event: delta'), end: Buffer.from('event: done') }
const model = (instant: boolean): string => (instant ? 'gpt-4o-mini-instant' : 'gpt-4o-mini')

/** The body the service sends OpenAI for `{ model, prompt }`, so every side asks the same. */
function openAICall(kind: Kind, instant: boolean, n?: number, headers: Record<string, string> = {}): Call {
  const chat = { model: model(instant), messages: [{ role: 'user', content: [{ type: 'text', text: prompt(n) }] }] }
  const body = kind === 'stream' ? { ...chat, stream: true, stream_options: { include_usage: true } } : chat
  return {
    path: '/v1/chat/completions',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench', ...headers },
    body: JSON.stringify(body),
  }
}

const origin = (port: number): string => `http://127.0.0.1:${port}`

/** The status `GET url` answers with. */
async function statusOf(url: string): Promise<number> {
  const res = await request(url, { headersTimeout: 1000, bodyTimeout: 1000 })
  await res.body.dump()
  return res.statusCode
}
const answers = async (url: string): Promise<boolean> => (await statusOf(url)) < 500

/** The stand-in, and the target that calls it directly (which has no proxy process); `env` adds BENCH_UPSTREAM_* settings. */
export async function startUpstream(
  env: Record<string, string> = {},
  name = 'stand-in',
): Promise<{ direct: Target; child: Child }> {
  const child = await forkScript(name, 'upstream.ts', env)
  return { direct: { name: 'direct', origin: origin(child.port), call: openAICall, marks: OPENAI_MARKS }, child }
}

/** The node flags production runs the service with: those of package.json's `start` script. */
export function productionNodeArgs(): string[] {
  const { scripts } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>
  }
  return (
    /\bnode((?:\s+--?\S+)*)\s+dist\/server\.js/
      .exec(scripts.start ?? '')?.[1]
      ?.trim()
      .split(/\s+/) ?? []
  )
}

export const allocator = imageAllocator(ROOT)

export async function buildService(): Promise<void> {
  await promisify(execFile)('npm', ['run', 'build'], { cwd: ROOT })
}

/** The service's default listen backlog, which the forwarder gets too. */
const LISTEN_BACKLOG = ENV_SCHEMA.properties.LISTEN_BACKLOG.default

export async function startForwarder(upstream: Target): Promise<Target> {
  const child = await forkScript(
    'forwarder',
    'forwarder.ts',
    { UPSTREAM_ORIGIN: upstream.origin, LISTEN_BACKLOG: String(LISTEN_BACKLOG), ...allocator.env },
    productionNodeArgs(),
  )
  return { name: 'forwarder', origin: origin(child.port), child, call: openAICall, marks: OPENAI_MARKS }
}

/**
 * The built service with its defaults; `env` adds settings for the fault runs only. It is ready,
 * and returned, once `GET /readyz` first answers 200 (polled every 20 ms): what a load balancer waits for.
 */
export async function startService(
  upstream: Target,
  env: Record<string, string> = {},
  name = 'service',
): Promise<Target & { child: Child }> {
  const port = await freePort()
  const child = await spawnServer(name, process.execPath, [...productionNodeArgs(), 'dist/server.js'], {
    port,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...allocator.env,
      OPENAI_BASE_URL: `${upstream.origin}/v1`,
      OPENAI_API_KEY: 'sk-bench',
      PORT: String(port),
      HOST: '127.0.0.1',
      ...env,
    },
    ready: async () => (await statusOf(`${origin(port)}/readyz`)) === 200,
  })
  const call = (kind: Kind, instant: boolean, n?: number): Call => ({
    path: '/v1/tasks/text-generation',
    headers: {
      'content-type': 'application/json',
      accept: kind === 'stream' ? 'text/event-stream' : 'application/json',
    },
    body: JSON.stringify({ model: model(instant), prompt: prompt(n) }),
  })
  return { name: 'service', origin: origin(port), child, call, marks: SERVICE_MARKS }
}

/** Portkey's gateway forwarding to the stand-in as a custom OpenAI host, or why it cannot run. */
export async function startPortkey(upstream: Target): Promise<Target | { error: string }> {
  const found = await portkeyEntry()
  if ('error' in found) return found
  const port = await freePort()
  try {
    const child = await spawnServer('portkey', process.execPath, [found.entry, `--port=${port}`, '--headless'], {
      port,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production' },
      ready: () => answers(`${origin(port)}/`),
    })
    const headers = { 'x-portkey-provider': 'openai', 'x-portkey-custom-host': `${upstream.origin}/v1` }
    return {
      name: 'portkey',
      origin: origin(port),
      child,
      call: (kind, instant, n) => openAICall(kind, instant, n, headers),
      marks: OPENAI_MARKS,
    }
  } catch (err) {
    return { error: (err as Error).message.split('\n')[0]! }
  }
}
