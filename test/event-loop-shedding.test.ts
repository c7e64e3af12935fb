import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildWithUpstream } from './support/app.ts'

/**
 * Load shedding on event-loop lag (MAX_EVENT_LOOP_DELAY_MS): a lagging loop gets 503
 * ERR_OVERLOADED with Retry-After, but not in the first seconds after start-up, whose lag is the
 * boot's own (schemas compiling) and would refuse the first calls of a fresh pod.
 */

const CHAT = { model: 'gpt-4o-mini', prompt: 'hi' }

/** Keeps the event loop busy in `blockMs` slices for `forMs`, as a process under load would be. */
async function lag(forMs: number, blockMs = 150): Promise<void> {
  const until = Date.now() + forMs
  while (Date.now() < until) {
    const end = Date.now() + blockMs
    while (Date.now() < end);
    await sleep(1)
  }
}

test('a lagging event loop sheds task calls with 503, except while the lag is the boot', async (t) => {
  const { app } = await buildWithUpstream(t, { MAX_EVENT_LOOP_DELAY_MS: '50' })
  const call = () => app.inject({ method: 'POST', url: '/v1/tasks/text-generation', payload: CHAT })

  // Freshly ready: lag as a slow boot has, sampled at least once; calls still go through.
  await lag(1_200)
  const early = await call()
  assert.equal(early.statusCode, 200, early.body)

  // Past the boot's samples, lag over a whole sample is load.
  await sleep(900)
  await lag(2_200)
  const shed = await call()
  assert.equal(shed.statusCode, 503, shed.body)
  assert.equal(shed.json().error.code, 'ERR_OVERLOADED')
  assert.equal(shed.headers['retry-after'], '1')

  // Calm again: the next sample lets calls through.
  await sleep(1_200)
  assert.equal((await call()).statusCode, 200)
})
