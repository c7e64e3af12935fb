import underPressure from '@fastify/under-pressure'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { OverloadedError, withDetails } from '../errors.ts'

export interface EventLoopSheddingOptions {
  /** MAX_EVENT_LOOP_DELAY_MS: above this mean lag, requests are refused with 503. */
  maxDelayMs: number
}

/** How often under-pressure samples the lag: its default. */
const SAMPLE_INTERVAL_MS = 1000

/**
 * Refuses requests with 503 ERR_OVERLOADED while the event loop lags over `maxDelayMs`, except in
 * the first two samples after start-up: those measure the boot's own schema compiling, not load,
 * and would shed the first calls a fresh process gets.
 */
async function eventLoopShedding(fastify: FastifyInstance, { maxDelayMs }: EventLoopSheddingOptions): Promise<void> {
  let measuresLoadFrom = Infinity
  fastify.addHook('onReady', (done) => {
    measuresLoadFrom = performance.now() + 2 * SAMPLE_INTERVAL_MS
    done()
  })
  await fastify.register(underPressure, {
    maxEventLoopDelay: maxDelayMs,
    sampleInterval: SAMPLE_INTERVAL_MS,
    pressureHandler: (_request, reply) => {
      if (performance.now() < measuresLoadFrom) return undefined
      reply.header('retry-after', '1')
      const error = new OverloadedError('the event loop lags over MAX_EVENT_LOOP_DELAY_MS')
      return Promise.reject(withDetails(error, [], { retryAfterSeconds: 1 }))
    },
  })
}

export default fp(eventLoopShedding, { name: 'event-loop-shedding' })
