/**
 * The test suite's stand-in OpenAI (test/support/fake-openai.ts) as a bench upstream: it parses
 * every request, checks it against OpenAI's OpenAPI contract and builds its answer, as a server
 * doing per-request work does — unlike bench/upstream.ts, which sends fixed bytes. Requests are
 * not recorded. Run as a child process; reports `{ port }` over IPC when forked.
 */
import type { AddressInfo } from 'node:net'
import { startFakeOpenAI } from '../test/support/fake-openai.ts'

const fake = await startFakeOpenAI({ record: false })
const port = Number(new URL(fake.origin).port)
if (process.send) process.send({ port } satisfies Pick<AddressInfo, 'port'>)
else console.log(`contract stand-in listening on ${fake.url}`)

process.on('disconnect', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
process.on('SIGINT', () => process.exit(0))
