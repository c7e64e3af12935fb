// The Grafana dashboard (deploy/grafana/) against the service itself: it imports with the
// Prometheus data source as an input, every query is valid PromQL, and every metric a query
// names is one the running service exports on GET /metrics.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { parser } from '@prometheus-io/lezer-promql'
import { buildWithUpstream } from './support/app.ts'

const DASHBOARD_FILE = new URL('../deploy/grafana/openai-tasks.json', import.meta.url)
// Grafana's input variable, written as the dashboard file holds it.
// eslint-disable-next-line no-template-curly-in-string
const DATASOURCE = { type: 'prometheus', uid: '${DS_PROMETHEUS}' }

interface Target {
  refId: string
  expr: string
  datasource?: { type: string; uid: string }
}

interface Panel {
  id: number
  type: string
  title: string
  datasource?: { type: string; uid: string }
  gridPos: { h: number; w: number; x: number; y: number }
  targets?: Target[]
  panels?: Panel[]
}

interface Dashboard {
  __inputs: Array<{ name: string; type: string; pluginId: string }>
  uid: string
  title: string
  panels: Panel[]
  templating: { list: Array<{ name: string; datasource: { type: string; uid: string }; query: { query: string } }> }
}

const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard
const panels = dashboard.panels
  .flatMap((panel) => [panel, ...(panel.panels ?? [])])
  .filter((panel) => panel.type !== 'row')

/** Every PromQL expression: the panels' queries, and the selectors of the variables' label_values(). */
function queries(): Array<{ where: string; expr: string }> {
  const found = panels.flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({ where: `${panel.title} ${target.refId}`, expr: target.expr })),
  )
  for (const variable of dashboard.templating.list) {
    const selector = /^label_values\((.+),\s*\w+\)$/.exec(variable.query.query)?.[1]
    assert.ok(selector, `variable ${variable.name} is label_values(<selector>, <label>)`)
    found.push({ where: `variable ${variable.name}`, expr: selector })
  }
  return found
}

/** Grafana's own variables as the values Prometheus would get; the others sit inside label values. */
function substituted(expr: string): string {
  return expr.replaceAll('$__rate_interval', '1m').replaceAll('$__range', '6h').replaceAll('$__interval', '30s')
}

/** The metric names an expression selects, after checking it parses without an error. */
function metricNames(where: string, expr: string): string[] {
  const source = substituted(expr)
  const names: string[] = []
  parser.parse(source).iterate({
    enter(node) {
      assert.ok(!node.type.isError, `${where}: PromQL syntax error at ${node.from} in ${source}`)
      if (node.name === 'Identifier' && node.node.parent?.name === 'VectorSelector') {
        names.push(source.slice(node.from, node.to))
      }
    },
  })
  assert.ok(names.length > 0, `${where}: the query selects a metric`)
  return names
}

/** Metric names in the exposition text: every sample's, and each declared histogram's series. */
function exportedNames(exposition: string): Set<string> {
  const names = new Set<string>()
  for (const line of exposition.split('\n')) {
    const declared = /^# TYPE (\S+) (\w+)$/.exec(line)
    if (declared) {
      const [, name, type] = declared
      const suffixes =
        type === 'histogram' ? ['_bucket', '_sum', '_count'] : type === 'summary' ? ['', '_sum', '_count'] : ['']
      for (const suffix of suffixes) names.add(name + suffix)
    } else if (line && !line.startsWith('#')) {
      names.add(/^[a-zA-Z_:][\w:]*/.exec(line)![0])
    }
  }
  return names
}

test('the dashboard imports anywhere: the Prometheus data source is an input every panel and variable uses', () => {
  assert.deepEqual(
    dashboard.__inputs.map(({ name, type, pluginId }) => ({ name, type, pluginId })),
    [{ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' }],
  )
  assert.equal(dashboard.uid, 'openai-tasks')
  assert.ok(panels.length > 0)
  for (const panel of panels) {
    assert.deepEqual(panel.datasource, DATASOURCE, `${panel.title}: data source`)
    for (const target of panel.targets ?? []) {
      assert.deepEqual(target.datasource, DATASOURCE, `${panel.title} ${target.refId}: data source`)
    }
    assert.ok(panel.gridPos.x + panel.gridPos.w <= 24, `${panel.title} fits the 24-column grid`)
  }
  for (const variable of dashboard.templating.list) {
    assert.deepEqual(variable.datasource, DATASOURCE, `variable ${variable.name}`)
  }
  const ids = dashboard.panels.flatMap((panel) => [panel.id, ...(panel.panels ?? []).map((p) => p.id)])
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique')
})

test('every query is valid PromQL naming metrics the service exports', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  // Some traffic first, so the labelled series exist: tokens, a retried error, media usage.
  upstream.enqueue({ status: 500 })
  const calls: Array<[string, unknown, string?]> = [
    ['/v1/tasks/text-generation', { model: 'gpt-4o-mini', prompt: 'hi' }],
    ['/v1/tasks/text-generation', { model: 'gpt-4o-mini', prompt: 'hi' }, 'text/event-stream'],
    ['/v1/tasks/text-embeddings', { model: 'text-embedding-3-small', text: 'hi' }],
    ['/v1/tasks/text-to-speech', { model: 'tts-1', text: 'hi', voice: 'alloy' }],
    [
      '/v1/tasks/speech-recognition',
      { model: 'whisper-1', audio: 'UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA=' },
    ],
    ['/v1/tasks/text-to-image', { prompt: 'a cat', size: '256x256' }],
  ]
  for (const [url, payload, accept] of calls) {
    const res = await app.inject({
      method: 'POST',
      url,
      payload: payload as object,
      headers: { accept: accept ?? 'application/json' },
    })
    assert.equal(res.statusCode, 200, `${url}: ${res.body}`)
  }
  const exported = exportedNames((await app.inject('/metrics')).body)
  assert.ok(exported.has('openai_tasks_upstream_retries_total'), 'the retry was counted')

  const used = new Set<string>()
  for (const { where, expr } of queries()) {
    for (const name of metricNames(where, expr)) {
      assert.ok(exported.has(name), `${where}: ${name} is not a metric the service exports`)
      used.add(name)
    }
  }
  for (const needed of [
    'openai_tasks_http_requests_total',
    'openai_tasks_http_request_duration_seconds_bucket',
    'openai_tasks_http_requests_in_flight',
    'openai_tasks_upstream_requests_in_flight',
    'openai_tasks_upstream_request_duration_seconds_bucket',
    'openai_tasks_upstream_errors_total',
    'openai_tasks_upstream_retries_total',
    'openai_tasks_tokens_total',
  ]) {
    assert.ok(used.has(needed), `the dashboard shows ${needed}`)
  }
  assert.ok(
    queries().some(({ expr }) => expr.includes('openai_tasks_tokens_total') && /by \([^)]*\bmodel\b/.test(expr)),
    'tokens are shown by model',
  )
})

test('a query naming a metric that does not exist would be caught', () => {
  assert.deepEqual(
    metricNames('example', 'sum by (model) (rate(openai_tasks_tokens_totl{job=~"$job"}[$__rate_interval]))'),
    ['openai_tasks_tokens_totl'],
  )
  assert.throws(() => metricNames('example', 'sum(rate(openai_tasks_tokens_total[$__rate_interval])'), /syntax error/)
})
