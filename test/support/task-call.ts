import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import { buildWithUpstream } from './app.ts'

export interface TaskCall {
  status: number
  body: any
  /** The JSON body that reached the stand-in OpenAI, if anything did. */
  sent: any
  /** How many requests reached the stand-in. */
  calls: number
}

/** Posts one input to a task on a fresh app and stand-in. */
export async function postTask(t: TestContext, task: string, payload: object): Promise<TaskCall> {
  const { app, upstream } = await buildWithUpstream(t)
  const res = await app.inject({ method: 'POST', url: `/v1/tasks/${task}`, payload })
  return { status: res.statusCode, body: res.json(), sent: upstream.requests[0]?.json, calls: upstream.requests.length }
}

/** Expects a 400 ERR_VALIDATION that reached nothing upstream; returns its [path, message] details. */
export function refusedDetails({ status, body, calls }: TaskCall): Array<[string, string]> {
  assert.equal(status, 400, JSON.stringify(body))
  assert.equal(body.error.code, 'ERR_VALIDATION')
  assert.equal(calls, 0, 'nothing reaches OpenAI')
  return body.error.details.map((d: { path: string; message: string }) => [d.path, d.message])
}
