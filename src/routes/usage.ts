import type { FastifyInstance, FastifyRequest } from 'fastify'
import { answerHeaders, errorResponses, type ResponseOptions } from '../openapi/responses.ts'
import type { SecurityRequirement } from '../openapi/security.ts'
import { usdNumber } from '../spend/call-cost.ts'
import { ANONYMOUS, type CallerSettings } from '../spend/callers.ts'
import type { SpenderTotals, SpendRow } from '../spend/local-spend.ts'
import type { SpendLedger } from '../spend/spend-ledger.ts'
import { UNITS } from '../spend/spend-units.ts'

const SPENT = {
  type: 'object',
  required: ['cost-usd', 'calls', 'unpriced-calls', 'by-model'],
  properties: {
    'cost-usd': { type: 'number', minimum: 0, description: 'Dollars spent on calls of priced models.' },
    calls: { type: 'integer', minimum: 0, description: 'OpenAI calls counted.' },
    'unpriced-calls': {
      type: 'integer',
      minimum: 0,
      description: 'Calls whose cost is unknown (no price for the model): not in `cost-usd`.',
    },
    'by-model': {
      type: 'array',
      items: {
        type: 'object',
        required: ['task', 'model', 'calls', 'unpriced-calls', 'cost-usd', 'usage'],
        properties: {
          task: { type: 'string', examples: ['text-embeddings'] },
          model: { type: 'string', examples: ['text-embedding-3-small'] },
          calls: { type: 'integer', minimum: 0 },
          'unpriced-calls': { type: 'integer', minimum: 0 },
          'cost-usd': { type: 'number', minimum: 0 },
          usage: {
            type: 'object',
            description: 'By unit; input tokens include cached ones, output tokens reasoning ones.',
            additionalProperties: false,
            properties: Object.fromEntries(UNITS.map((unit) => [unit, { type: 'number', minimum: 0 }])),
          },
        },
      },
    },
  },
}

const CALLER_USAGE = {
  type: 'object',
  required: ['caller', 'today', 'this-month'],
  properties: {
    caller: { type: 'string', description: 'Its name, `own-key:<digest prefix>`, or `anonymous`.' },
    budget: {
      type: 'object',
      description: 'Its budget, where it has one.',
      properties: { 'usd-per-day': { type: 'number' }, 'usd-per-month': { type: 'number' } },
    },
    today: SPENT,
    'this-month': SPENT,
  },
}

/**
 * `GET /v1/usage`: what the caller spent today and this month (UTC), by task and model; an admin
 * token sees every caller. From Redis when the ledger is shared, else this process's own count.
 */
export function registerUsageRoute(
  fastify: FastifyInstance,
  { ledger, callers }: { ledger: SpendLedger; callers: CallerSettings[] },
  documented: { security: SecurityRequirement[]; answers: ResponseOptions },
): void {
  const budgets = new Map(callers.map((caller) => [caller.name, caller.budget]))
  fastify.get(
    '/v1/usage',
    {
      config: { admins: true },
      schema: {
        operationId: 'usage',
        tags: ['usage'],
        summary: 'What you spent today and this month, by task and model',
        description:
          "The calling caller's spend and usage in the current UTC day and month, at the service's " +
          "prices; with an admin token (`admin-tokens` of the configuration file), every caller's. " +
          "`shared` says whether the figures are every replica's (Redis) or this process's only.",
        security: documented.security,
        response: {
          200: {
            description: 'Spend by caller, for today and this month',
            headers: answerHeaders(documented.answers),
            type: 'object',
            required: ['day', 'month', 'shared', 'callers'],
            properties: {
              day: { type: 'string', examples: ['2026-12-07'], description: 'Today, UTC.' },
              month: { type: 'string', examples: ['2026-12'], description: 'This month, UTC.' },
              shared: { type: 'boolean', description: "Every replica's spend (Redis), or this process's." },
              callers: { type: 'array', items: CALLER_USAGE },
            },
          },
          ...errorResponses(
            { refused: 'Refused: no valid service or admin token', failed: 'The service failed' },
            documented.answers,
          ),
        },
      },
    },
    async (request: FastifyRequest) => {
      const asked = request.admin ? undefined : [request.caller?.name ?? ANONYMOUS]
      const { day, month, shared } = await ledger.report(asked)
      const names = asked ?? [...new Set([...day.spenders.keys(), ...month.spenders.keys()])].sort()
      return {
        day: day.period.slice('day:'.length),
        month: month.period.slice('month:'.length),
        shared,
        callers: names.map((name) => {
          const budget = budgets.get(name)
          return {
            caller: name,
            ...(budget && {
              budget: {
                ...(budget.usdPerDay !== undefined && { 'usd-per-day': budget.usdPerDay }),
                ...(budget.usdPerMonth !== undefined && { 'usd-per-month': budget.usdPerMonth }),
              },
            }),
            today: spent(day.spenders.get(name)),
            'this-month': spent(month.spenders.get(name)),
          }
        }),
      }
    },
  )
}

function spent(totals: SpenderTotals | undefined) {
  const rows = totals?.rows ?? []
  return {
    'cost-usd': usdNumber(totals?.nanoUsd ?? 0),
    calls: rows.reduce((n, row) => n + row.calls, 0),
    'unpriced-calls': rows.reduce((n, row) => n + row.unpricedCalls, 0),
    'by-model': rows.map((row: SpendRow) => ({
      task: row.task,
      model: row.model,
      calls: row.calls,
      'unpriced-calls': row.unpricedCalls,
      'cost-usd': usdNumber(row.nanoUsd),
      usage: row.units,
    })),
  }
}
