// The deployment artifacts (Dockerfile, .dockerignore, deploy/kubernetes/) checked against the
// service itself: probe paths it serves, env vars it reads and accepts, its port and grace period.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { basename, join, relative } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'
import { findLibrary, imageAllocatorEnv } from '../bench/allocator.ts'
import { ENV_SCHEMA, loadConfig, OTEL_ENV_SCHEMA } from '../src/config.ts'
import { build } from './support/app.ts'
import { needs } from './support/needs.ts'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const K8S_DIR = join(ROOT, 'deploy', 'kubernetes')
const EXAMPLE_SECRET = 'secret.example.yaml'
const APP = 'openai-tasks'
const REDIS = 'openai-tasks-redis'

// ---------------------------------------------------------------------------------------------
// Just enough of the Kubernetes shapes for these checks.

type Labels = Record<string, string>

interface Manifest {
  apiVersion: string
  kind: string
  metadata: { name: string; labels?: Labels }
}

interface HttpGetAction {
  path: string
  port: string | number
}

interface Probe {
  httpGet?: HttpGetAction
  exec?: { command: string[] }
  tcpSocket?: { port: string | number }
}

interface SecurityContext {
  runAsNonRoot?: boolean
  runAsUser?: number
  readOnlyRootFilesystem?: boolean
  allowPrivilegeEscalation?: boolean
  capabilities?: { drop?: string[]; add?: string[] }
}

interface EnvVar {
  name: string
  value?: string
  valueFrom?: {
    secretKeyRef?: { name: string; key: string }
    configMapKeyRef?: { name: string; key: string }
  }
}

interface Container {
  name: string
  image: string
  ports?: { name?: string; containerPort: number }[]
  env?: EnvVar[]
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[]
  startupProbe?: Probe
  readinessProbe?: Probe
  livenessProbe?: Probe
  lifecycle?: { preStop?: { exec?: { command: string[] }; sleep?: { seconds: number } } }
  resources?: { requests?: { cpu?: string; memory?: string }; limits?: { cpu?: string; memory?: string } }
  securityContext?: SecurityContext
  volumeMounts?: { name: string; mountPath: string }[]
}

interface PodSpec {
  terminationGracePeriodSeconds?: number
  securityContext?: SecurityContext
  containers: Container[]
  volumes?: { name: string; emptyDir?: object }[]
}

interface Deployment extends Manifest {
  spec: {
    replicas: number
    selector: { matchLabels: Labels }
    template: { metadata: { labels: Labels }; spec: PodSpec }
  }
}

interface Service extends Manifest {
  spec: { type?: string; selector: Labels; ports: { name?: string; port: number; targetPort: string | number }[] }
}

interface ConfigMap extends Manifest {
  data?: Record<string, string>
}

interface Secret extends Manifest {
  stringData?: Record<string, string>
  data?: Record<string, string>
}

interface Hpa extends Manifest {
  spec: {
    scaleTargetRef: { apiVersion: string; kind: string; name: string }
    minReplicas: number
    maxReplicas: number
    metrics: { type: string; resource?: { name: string; target: { type: string; averageUtilization?: number } } }[]
  }
}

interface Kustomization {
  resources: string[]
}

// ---------------------------------------------------------------------------------------------
// Loading.

function parseYamlFile(path: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(path, 'utf8'))
  assert.ok(Array.isArray(docs), `${path}: parses as YAML documents`)
  return docs
    .map((doc, i) => {
      assert.deepEqual(doc.errors.map(String), [], `${path} document ${i}: no YAML errors`)
      assert.deepEqual(doc.warnings.map(String), [], `${path} document ${i}: no YAML warnings`)
      return doc.toJS() as unknown
    })
    .filter((value) => value !== null && value !== undefined)
}

const yamlFiles = readdirSync(K8S_DIR)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort()

/** Every document of every manifest file but the kustomization, keyed by file. */
const manifestsByFile = new Map<string, Manifest[]>(
  yamlFiles.filter((f) => f !== 'kustomization.yaml').map((f) => [f, parseYamlFile(join(K8S_DIR, f)) as Manifest[]]),
)
/** What `kubectl apply -k` applies: the files the kustomization lists. */
const kustomization = parseYamlFile(join(K8S_DIR, 'kustomization.yaml'))[0] as Kustomization
const applied = kustomization.resources.flatMap((f) => manifestsByFile.get(f) ?? [])

function find<T extends Manifest>(kind: string, name: string, from: Manifest[] = applied): T {
  const found = from.filter((m) => m.kind === kind && m.metadata.name === name)
  assert.equal(found.length, 1, `exactly one ${kind} ${name}`)
  return found[0] as T
}

const deployment = find<Deployment>('Deployment', APP)
const pod = deployment.spec.template.spec
const container = pod.containers.find((c) => c.name === APP) ?? assert.fail(`container ${APP} in the Deployment`)
const exampleSecret = find<Secret>('Secret', APP, manifestsByFile.get(EXAMPLE_SECRET) ?? [])

/** The container's environment as the kubelet builds it: envFrom first, `env` entries win. */
function effectiveEnv(c: Container): Map<string, EnvVar> {
  const env = new Map<string, EnvVar>()
  for (const source of c.envFrom ?? []) {
    assert.ok(source.configMapRef, 'envFrom uses ConfigMaps only (secrets go through secretKeyRef)')
    const data = find<ConfigMap>('ConfigMap', source.configMapRef.name).data ?? {}
    for (const [name, value] of Object.entries(data)) env.set(name, { name, value })
  }
  for (const entry of c.env ?? []) env.set(entry.name, entry)
  return env
}

/** Env values, with secret references resolved from the example Secret. */
function resolvedEnv(c: Container): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, entry] of effectiveEnv(c)) {
    const ref = entry.valueFrom?.secretKeyRef
    if (ref) {
      assert.equal(ref.name, exampleSecret.metadata.name, `${name} comes from the documented Secret`)
      out[name] = exampleSecret.stringData?.[ref.key] ?? assert.fail(`${EXAMPLE_SECRET} documents key ${ref.key}`)
    } else {
      assert.equal(typeof entry.value, 'string', `${name} has a literal string value`)
      out[name] = entry.value as string
    }
  }
  return out
}

function selects(selector: Labels, labels: Labels): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v)
}

function podTemplates(): { name: string; labels: Labels }[] {
  return applied
    .filter((m): m is Deployment => m.kind === 'Deployment')
    .map((d) => ({ name: d.metadata.name, labels: d.spec.template.metadata.labels }))
}

function namedPort(c: Container, port: string | number): number {
  if (typeof port === 'number') return port
  return c.ports?.find((p) => p.name === port)?.containerPort ?? assert.fail(`container port named ${port}`)
}

// ---------------------------------------------------------------------------------------------
// Kubernetes.

test('every manifest parses and names its kind; the kustomization lists all but the example Secret', () => {
  assert.ok(manifestsByFile.size > 0)
  for (const [file, docs] of manifestsByFile) {
    assert.ok(docs.length > 0, `${file} holds a document`)
    for (const doc of docs) {
      assert.equal(typeof doc.apiVersion, 'string', `${file}: apiVersion`)
      assert.equal(typeof doc.kind, 'string', `${file}: kind`)
      assert.match(doc.metadata?.name ?? '', /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, `${file}: a DNS-1123 metadata.name`)
    }
  }
  const expected = [...manifestsByFile.keys()].filter((f) => f !== EXAMPLE_SECRET).sort()
  assert.deepEqual([...kustomization.resources].sort(), expected, 'kustomization.yaml lists every manifest')
  assert.ok(!kustomization.resources.includes(EXAMPLE_SECRET), 'the example Secret is never applied')
  assert.ok(!applied.some((m) => m.kind === 'Secret'), 'no Secret is applied from the repository')
})

test('kubectl kustomize renders the manifests', (t) => {
  if (spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status !== 0) {
    t.skip('needs kubectl (the other manifest checks run without it)')
    return
  }
  const run = spawnSync('kubectl', ['kustomize', K8S_DIR], { encoding: 'utf8' })
  assert.equal(run.status, 0, run.stderr)
  const rendered = parseAllDocuments(run.stdout)
  assert.ok(Array.isArray(rendered))
  const kinds = rendered.map((d) => `${(d.toJS() as Manifest).kind}/${(d.toJS() as Manifest).metadata.name}`).sort()
  assert.deepEqual(kinds, applied.map((m) => `${m.kind}/${m.metadata.name}`).sort())
})

test('the probes hit routes the service serves, on its http port', async (t) => {
  const probes = {
    startupProbe: container.startupProbe,
    readinessProbe: container.readinessProbe,
    livenessProbe: container.livenessProbe,
  }
  assert.equal(container.readinessProbe?.httpGet?.path, '/readyz')
  assert.equal(container.livenessProbe?.httpGet?.path, '/healthz')
  // The app as the Deployment configures it (service tokens on), minus Redis, which is not
  // here: an in-memory limit of 1 request shows the probes are exempt from it.
  const { REDIS_URL: _redis, ...env } = resolvedEnv(container)
  const app = await build(t, { ...env, RATE_LIMIT_MAX: '1' })
  for (const [kind, probe] of Object.entries(probes)) {
    if (!probe) continue
    const action = probe.httpGet ?? assert.fail(`${kind} is an httpGet probe`)
    assert.equal(namedPort(container, action.port), 8080, `${kind} targets the container port`)
    // The kubelet sends no credentials and probes every few seconds: no auth, no rate limit.
    for (let i = 0; i < 3; i++) {
      const res = await app.inject({ method: 'GET', url: action.path })
      assert.equal(res.statusCode, 200, `${kind} ${action.path} answers 200: ${res.body}`)
    }
  }
  const guarded = await app.inject({
    method: 'POST',
    url: '/v1/tasks/text-embeddings',
    payload: { model: 'text-embedding-3-small', text: 'hi' },
  })
  assert.equal(guarded.statusCode, 401, 'while the task routes do ask for a service token')
})

test('container port, PORT env and the Service agree', () => {
  const http = container.ports?.find((p) => p.name === 'http') ?? assert.fail('a container port named http')
  assert.equal(http.containerPort, 8080)
  const env = resolvedEnv(container)
  assert.equal(Number(env.PORT), http.containerPort, 'PORT is the container port')
  assert.equal(env.HOST, '0.0.0.0', 'the service listens beyond loopback')

  assert.ok(
    selects(deployment.spec.selector.matchLabels, deployment.spec.template.metadata.labels),
    'the Deployment selects its pods',
  )
  const service = find<Service>('Service', APP)
  assert.equal(service.spec.type ?? 'ClusterIP', 'ClusterIP')
  assert.equal(service.spec.ports.length, 1)
  const port = service.spec.ports[0]!
  assert.equal(port.port, 80)
  assert.ok(
    port.targetPort === 'http' || port.targetPort === http.containerPort,
    'targetPort is the http port by name or number',
  )
  assert.equal(namedPort(container, port.targetPort), http.containerPort)
  const selected = podTemplates()
    .filter((p) => selects(service.spec.selector, p.labels))
    .map((p) => p.name)
  assert.deepEqual(selected, [APP], 'the Service selects the service pods and nothing else (not Redis)')
})

/** The variables the service reads: its own, and OpenTelemetry's standard ones. */
const KNOWN_ENV = new Set([...Object.keys(ENV_SCHEMA.properties), ...Object.keys(OTEL_ENV_SCHEMA.properties)])

test('every env var the Deployment and ConfigMap set is one the service reads', () => {
  const known = KNOWN_ENV
  const names = [...effectiveEnv(container).keys()]
  // The ConfigMaps that become env vars; another (the configuration file) is mounted as a file.
  const asEnv = new Set((container.envFrom ?? []).map((source) => source.configMapRef?.name))
  for (const cm of applied.filter((m): m is ConfigMap => m.kind === 'ConfigMap' && asEnv.has(m.metadata.name))) {
    names.push(...Object.keys(cm.data ?? {}))
  }
  const unknown = [...new Set(names)].filter((n) => !known.has(n)).sort()
  assert.deepEqual(
    unknown,
    [],
    'names missing from ENV_SCHEMA in src/config.ts (a typo, or a setting the service does not have)',
  )
  for (const required of ['HOST', 'PORT', 'GRACE_PERIOD_MS', 'OPENAI_API_KEY', 'SERVICE_TOKENS', 'REDIS_URL']) {
    assert.ok(names.includes(required), `${required} is set`)
  }
})

test("the env values, with the example Secret, pass the service's own validation", () => {
  const env = resolvedEnv(container)
  const config = loadConfig(env)
  assert.equal(config.port, 8080)
  assert.equal(config.host, '0.0.0.0')
  assert.ok(config.openai.apiKey, 'the server key is set')
  const redis = find<Service>('Service', REDIS)
  const url = new URL(env.REDIS_URL ?? assert.fail('REDIS_URL is set'))
  assert.equal(url.protocol, 'redis:')
  assert.equal(url.hostname, redis.metadata.name, 'REDIS_URL names the Redis Service')
  assert.equal(Number(url.port), redis.spec.ports[0]?.port, 'REDIS_URL uses the Redis Service port')
})

/**
 * A manifest file with its commented-out tracing settings put back: `# OTEL_…: value` lines,
 * `# otlp-headers: …`, and `# - name: OTEL_…` env entries with their indented continuation.
 */
function withTracingUncommented(file: string): unknown[] {
  const lines = readFileSync(join(K8S_DIR, file), 'utf8').split('\n')
  let inEntry = false
  const text = lines
    .map((line) => {
      const [, indent = '', rest = ''] = /^(\s*)# (.*)$/.exec(line) ?? []
      const setting = /^(?:- name: )?(?:OTEL_[A-Z_]+|otlp-headers)\b/.test(rest)
      const continuation = inEntry && rest.startsWith(' ')
      inEntry = setting ? rest.startsWith('- name:') : continuation
      return setting || continuation ? indent + rest : line
    })
    .join('\n')
  return parseAllDocuments(text).map((doc) => doc.toJS() as unknown)
}

test('the tracing settings the manifests hold commented out are read by the service and, put back, turn tracing on', () => {
  const configMap = (withTracingUncommented('configmap.yaml') as ConfigMap[]).find((m) => m?.kind === 'ConfigMap')!
  const tracingData = Object.fromEntries(
    Object.entries(configMap.data ?? {}).filter(([name]) => name.startsWith('OTEL_')),
  )
  assert.ok(tracingData.OTEL_EXPORTER_OTLP_ENDPOINT, 'the ConfigMap shows where spans go')
  const tracedDeployment = (withTracingUncommented('deployment.yaml') as Deployment[]).find(
    (m) => m?.kind === 'Deployment',
  )!
  const env = tracedDeployment.spec.template.spec.containers.find((c) => c.name === APP)!.env ?? []
  const headers =
    env.find((e) => e.name === 'OTEL_EXPORTER_OTLP_HEADERS') ??
    assert.fail('the Deployment shows OTLP headers from the Secret')
  const secret = (withTracingUncommented(EXAMPLE_SECRET) as Secret[]).find((m) => m?.kind === 'Secret')!
  const headersValue =
    secret.stringData?.[headers.valueFrom?.secretKeyRef?.key ?? ''] ??
    assert.fail('the example Secret documents the headers key')

  const names = [...Object.keys(tracingData), headers.name]
  assert.deepEqual(
    names.filter((n) => !KNOWN_ENV.has(n)),
    [],
    'names missing from OTEL_ENV_SCHEMA in src/config.ts',
  )
  const config = loadConfig({ ...resolvedEnv(container), ...tracingData, OTEL_EXPORTER_OTLP_HEADERS: headersValue })
  assert.equal(config.tracing.enabled, true)
  assert.equal(config.tracing.captureMessageContent, false, 'prompts stay out of traces')
  assert.equal(loadConfig(resolvedEnv(container)).tracing.enabled, false, 'as shipped, tracing is off')
})

test('secrets come from the Secret keys documented in the example, which holds placeholders only', () => {
  const refs = [...effectiveEnv(container).values()].flatMap((e) =>
    e.valueFrom?.secretKeyRef ? [[e.name, e.valueFrom.secretKeyRef] as const] : [],
  )
  assert.deepEqual(Object.fromEntries(refs.map(([name, ref]) => [name, `${ref.name}/${ref.key}`])), {
    OPENAI_API_KEY: 'openai-tasks/openai-api-key',
    SERVICE_TOKENS: 'openai-tasks/service-tokens',
  })
  assert.equal(exampleSecret.data, undefined, 'the example uses stringData only')
  const values = Object.values(exampleSecret.stringData ?? {})
  assert.ok(values.length > 0)
  for (const value of values) {
    assert.match(value, /REPLACE_ME/, 'every example value is an obvious placeholder')
    assert.doesNotMatch(value, /sk-[A-Za-z0-9_-]{8,}/, 'nothing shaped like an OpenAI key')
  }
  for (const env of [...effectiveEnv(container).values()]) {
    if (/KEY|TOKEN|SECRET|PASSWORD/.test(env.name)) {
      assert.ok(env.valueFrom?.secretKeyRef, `${env.name} comes from a Secret`)
    }
  }
})

test("the pod outlives the service's grace period: preStop sleep + GRACE_PERIOD_MS < terminationGracePeriodSeconds", () => {
  const gracePeriodMs = Number(
    resolvedEnv(container).GRACE_PERIOD_MS ?? assert.fail('GRACE_PERIOD_MS is set explicitly'),
  )
  const terminationMs = (pod.terminationGracePeriodSeconds ?? 30) * 1000
  assert.ok(pod.terminationGracePeriodSeconds !== undefined, 'terminationGracePeriodSeconds is set explicitly')
  assert.ok(terminationMs > gracePeriodMs, `${terminationMs} ms > GRACE_PERIOD_MS ${gracePeriodMs}`)
  const preStop = container.lifecycle?.preStop ?? assert.fail('a preStop hook lets endpoints drain')
  const sleepSeconds =
    preStop.sleep?.seconds ?? Number(preStop.exec?.command[0] === 'sleep' ? preStop.exec.command[1] : NaN)
  assert.ok(sleepSeconds >= 2 && sleepSeconds <= 15, `preStop sleeps a few seconds (${sleepSeconds})`)
  // The kubelet counts the preStop hook against the same grace period, then sends SIGTERM.
  assert.ok(terminationMs > sleepSeconds * 1000 + gracePeriodMs, 'preStop + GRACE_PERIOD_MS end before SIGKILL')
})

test('the service container runs non-root, read-only, unprivileged, with a writable /tmp', () => {
  const sc = { ...pod.securityContext, ...container.securityContext }
  assert.equal(sc.runAsNonRoot, true)
  assert.equal(sc.runAsUser, 1000, 'uid 1000 is the node user of the node:* images')
  assert.equal(sc.readOnlyRootFilesystem, true)
  assert.equal(sc.allowPrivilegeEscalation, false)
  assert.ok(sc.capabilities?.drop?.includes('ALL'), 'capabilities drop ALL')
  assert.deepEqual(sc.capabilities?.add ?? [], [])
  const mount = container.volumeMounts?.find((m) => m.mountPath === '/tmp') ?? assert.fail('/tmp is mounted')
  assert.ok(pod.volumes?.find((v) => v.name === mount.name)?.emptyDir, '/tmp is an emptyDir')
})

test('every container has resource requests and limits, and the Deployment runs 2 replicas', () => {
  assert.equal(deployment.spec.replicas, 2)
  for (const d of applied.filter((m): m is Deployment => m.kind === 'Deployment')) {
    for (const c of d.spec.template.spec.containers) {
      for (const key of ['requests', 'limits'] as const) {
        assert.ok(c.resources?.[key]?.cpu, `${d.metadata.name}/${c.name} ${key}.cpu`)
        assert.ok(c.resources?.[key]?.memory, `${d.metadata.name}/${c.name} ${key}.memory`)
      }
    }
  }
})

test('the HPA scales the Deployment on CPU, 2 to 10', () => {
  const hpa = find<Hpa>('HorizontalPodAutoscaler', APP)
  assert.equal(hpa.apiVersion, 'autoscaling/v2')
  assert.deepEqual(hpa.spec.scaleTargetRef, {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    name: deployment.metadata.name,
  })
  assert.equal(hpa.spec.minReplicas, 2)
  assert.equal(hpa.spec.maxReplicas, 10)
  assert.ok(hpa.spec.minReplicas <= deployment.spec.replicas)
  assert.deepEqual(hpa.spec.metrics, [
    { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } },
  ])
  assert.ok(container.resources?.requests?.cpu, 'CPU utilisation needs a CPU request')
})

test('Redis: non-root, read-only, probed, and its Service selects it', () => {
  const redis = find<Deployment>('Deployment', REDIS)
  const redisPod = redis.spec.template.spec
  const c = redisPod.containers[0] ?? assert.fail('a Redis container')
  const sc = { ...redisPod.securityContext, ...c.securityContext }
  assert.equal(sc.runAsNonRoot, true)
  assert.ok(typeof sc.runAsUser === 'number' && sc.runAsUser > 0)
  assert.equal(sc.readOnlyRootFilesystem, true)
  assert.equal(sc.allowPrivilegeEscalation, false)
  assert.ok(sc.capabilities?.drop?.includes('ALL'))
  assert.ok(c.readinessProbe && c.livenessProbe, 'readiness and liveness probes')
  assert.ok(
    c.volumeMounts?.some((m) => m.mountPath === '/data'),
    'a writable /data',
  )
  const service = find<Service>('Service', REDIS)
  assert.deepEqual(
    podTemplates()
      .filter((p) => selects(service.spec.selector, p.labels))
      .map((p) => p.name),
    [REDIS],
  )
  assert.equal(namedPort(c, service.spec.ports[0]?.targetPort ?? 0), 6379)
})

test('PodDisruptionBudgets and NetworkPolicies select existing pods', () => {
  const templates = podTemplates()
  for (const m of applied) {
    if (m.kind !== 'PodDisruptionBudget' && m.kind !== 'NetworkPolicy') continue
    const spec = (m as Manifest & { spec: Record<string, { matchLabels: Labels }> }).spec
    const selector =
      (m.kind === 'NetworkPolicy' ? spec.podSelector : spec.selector) ?? assert.fail(`${m.kind} selector`)
    assert.ok(
      templates.some((p) => selects(selector.matchLabels, p.labels)),
      `${m.kind} ${m.metadata.name} selects pods`,
    )
  }
})

// ---------------------------------------------------------------------------------------------
// Dockerfile.

interface Instruction {
  keyword: string
  args: string
}

/** Instructions with continuations joined and comment lines dropped, split into stages. */
function dockerfileStages(): Instruction[][] {
  const lines = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').split('\n')
  const instructions: Instruction[] = []
  let current = ''
  for (const line of lines) {
    if (/^\s*#/.test(line)) continue
    current += current ? ` ${line.trim()}` : line.trim()
    if (current.endsWith('\\')) {
      current = current.slice(0, -1).trimEnd()
      continue
    }
    if (current) {
      const match = /^(\w+)\s+(.*)$/.exec(current) ?? assert.fail(`Dockerfile line: ${current}`)
      instructions.push({ keyword: match[1]!.toUpperCase(), args: match[2]! })
    }
    current = ''
  }
  const stages: Instruction[][] = []
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') stages.push([])
    stages.at(-1)?.push(ins) ?? assert.fail('the Dockerfile starts with FROM')
  }
  return stages
}

const stages = dockerfileStages()
const runtime = stages.at(-1) ?? assert.fail('a runtime stage')
const last = (stage: Instruction[], keyword: string): Instruction | undefined =>
  stage.filter((i) => i.keyword === keyword).at(-1)

test('Dockerfile: node:24 stages, non-root runtime, tini, HEALTHCHECK on /healthz, node dist/server.js', () => {
  const stageNames = new Set<string>()
  for (const stage of stages) {
    const [image, as, name] = stage[0]!.args.split(/\s+/)
    if (!stageNames.has(image!)) assert.match(image!, /^node:24[-.\w]*$/, `FROM ${image} is node:24*`)
    if (as?.toUpperCase() === 'AS' && name) stageNames.add(name)
  }
  const user = last(runtime, 'USER')?.args ?? assert.fail('the runtime stage sets USER')
  assert.doesNotMatch(user.split(':')[0]!, /^(root|0)$/, 'USER is not root')
  assert.match(last(runtime, 'STOPSIGNAL')?.args ?? '', /^SIGTERM$/)

  const healthcheck = last(runtime, 'HEALTHCHECK')?.args ?? assert.fail('a HEALTHCHECK')
  assert.match(healthcheck, /\/healthz/)
  assert.doesNotMatch(healthcheck, /\b(curl|wget)\b/, 'needs no curl/wget in the image')

  const { scripts } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>
  }
  assert.deepEqual(
    JSON.parse(last(runtime, 'CMD')?.args ?? 'null'),
    scripts.start!.split(' '),
    'CMD runs what `npm start` runs',
  )
  const entrypoint = JSON.parse(last(runtime, 'ENTRYPOINT')?.args ?? 'null') as string[]
  assert.deepEqual(entrypoint, ['/usr/bin/tini', '--'], 'tini is PID 1')
  assert.ok(
    runtime.some((i) => i.keyword === 'RUN' && /apt-get install\b.*\btini\b/.test(i.args)),
    'tini is installed',
  )

  const exposed = last(runtime, 'EXPOSE')?.args
  assert.equal(Number(exposed), container.ports?.[0]?.containerPort, "EXPOSE is the Deployment's container port")
  assert.match(
    runtime
      .filter((i) => i.keyword === 'ENV')
      .map((i) => i.args)
      .join(' '),
    /\bPORT=8080\b/,
  )
  for (const key of ['title', 'description', 'version', 'revision', 'created', 'licenses']) {
    assert.match(
      runtime
        .filter((i) => i.keyword === 'LABEL')
        .map((i) => i.args)
        .join(' '),
      new RegExp(`org\\.opencontainers\\.image\\.${key}=`),
    )
  }
})

const allocator = imageAllocatorEnv(ROOT) ?? assert.fail('the runtime stage sets LD_PRELOAD and MALLOC_CONF')
const allocatorLibrary = findLibrary(basename(allocator.preload))

test('Dockerfile: the malloc it preloads is installed and linked where LD_PRELOAD points', () => {
  const runs = runtime.filter((i) => i.keyword === 'RUN').map((i) => i.args)
  assert.ok(
    runs.some((a) => /apt-get install\b.*\blibjemalloc2\b/.test(a)),
    'libjemalloc2 is installed',
  )
  assert.ok(
    runs.some((a) => a.includes('ln -s') && a.includes(allocator.preload)),
    `${allocator.preload} is linked to the package's library`,
  )
  const envs = runtime
    .filter((i) => i.keyword === 'ENV')
    .map((i) => i.args)
    .join(' ')
  assert.ok(
    envs.includes(`LD_PRELOAD=${allocator.preload}`) && envs.includes(`MALLOC_CONF=${allocator.mallocConf}`),
    'both are ENV of the runtime stage',
  )
})

const skipAllocator = needs(basename(allocator.preload), allocatorLibrary !== undefined, 'apt-get install libjemalloc2')

test('Dockerfile: node runs with the malloc it preloads, which takes its MALLOC_CONF', { skip: skipAllocator }, () => {
  const library = allocatorLibrary ?? assert.fail(`${basename(allocator.preload)} on this machine (CI is set)`)
  const child = spawnSync(
    process.execPath,
    ['-e', "process.stdout.write(require('fs').readFileSync('/proc/self/maps', 'utf8'))"],
    {
      env: { ...process.env, LD_PRELOAD: library, MALLOC_CONF: allocator.mallocConf },
      encoding: 'utf8',
    },
  )
  assert.equal(child.status, 0)
  assert.equal(child.stderr, '', 'jemalloc accepts every MALLOC_CONF option (it warns about the ones it does not know)')
  assert.ok(child.stdout.includes(library), 'node runs with the library loaded')
})

/** Minimal .dockerignore semantics: last matching pattern wins; a pattern matching a parent matches. */
function dockerignored(path: string, patterns: string[]): boolean {
  const segments = path.split('/')
  let ignored = false
  for (const raw of patterns) {
    const negated = raw.startsWith('!')
    const pattern = (negated ? raw.slice(1) : raw).replace(/^\/+|\/+$/g, '')
    const regex = new RegExp(
      `^${pattern
        .split(/(\*\*\/|\*\*|\*|\?)/)
        .map((part) =>
          part === '**/'
            ? '(?:.*/)?'
            : part === '**'
              ? '.*'
              : part === '*'
                ? '[^/]*'
                : part === '?'
                  ? '[^/]'
                  : part.replace(/[.+^${}()|[\]\\]/g, '\\$&'),
        )
        .join('')}$`,
    )
    const matches = segments.some((_, i) => regex.test(segments.slice(0, i + 1).join('/')))
    if (matches) ignored = !negated
  }
  return ignored
}

function filesUnder(path: string): string[] {
  const full = join(ROOT, path)
  if (!statSync(full).isDirectory()) return [path]
  return readdirSync(full, { recursive: true, encoding: 'utf8' })
    .map((f) => relative(ROOT, join(full, f)))
    .filter((f) => statSync(join(ROOT, f)).isFile())
}

test('Dockerfile: every path it COPYs exists and the .dockerignore lets it into the context', () => {
  const patterns = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
  const sources: string[] = []
  for (const ins of stages.flat()) {
    if (ins.keyword !== 'COPY' && ins.keyword !== 'ADD') continue
    const words = ins.args.split(/\s+/)
    if (words.some((w) => w.startsWith('--from'))) continue
    const paths = words.filter((w) => !w.startsWith('--'))
    sources.push(...paths.slice(0, -1))
  }
  assert.ok(sources.includes('src') && sources.includes('schemas'))
  for (const source of sources) {
    const files = (() => {
      try {
        return filesUnder(source)
      } catch {
        return assert.fail(`COPY ${source}: the path exists in the repository`)
      }
    })()
    assert.ok(files.length > 0, `COPY ${source} copies something`)
    const excluded = files.filter((f) => dockerignored(f, patterns) && !/\.log$|\.DS_Store$/.test(f))
    assert.deepEqual(excluded, [], `COPY ${source}: no file is excluded by .dockerignore`)
  }
  for (const junk of [
    'node_modules/fastify/package.json',
    'dist/server.js',
    'test/deploy.test.ts',
    '.git/HEAD',
    'README.md',
  ]) {
    assert.ok(dockerignored(junk, patterns), `${junk} stays out of the build context`)
  }
  // What the runtime reads from disk: the compiled code and schemas/ (loaded at start-up).
  const runtimeCopies = runtime.filter((i) => i.keyword === 'COPY').map((i) => i.args)
  assert.ok(runtimeCopies.some((a) => /--from=build\s+\/app\/dist\s/.test(a)))
  assert.ok(runtimeCopies.some((a) => /^schemas\s/.test(a)))
})

test('Dockerfile: the HEALTHCHECK command passes against a live service and fails without one', async (t) => {
  const healthcheck = last(runtime, 'HEALTHCHECK')?.args ?? assert.fail('a HEALTHCHECK')
  const command = JSON.parse(healthcheck.slice(healthcheck.indexOf('CMD') + 3).trim()) as string[]
  assert.equal(command[0], 'node')
  const app = await build(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as AddressInfo).port
  const run = async (env: Record<string, string>): Promise<number | null> => {
    const child = spawn(process.execPath, command.slice(1), { env: { ...process.env, ...env }, stdio: 'ignore' })
    const [code] = (await once(child, 'exit')) as [number | null]
    return code
  }
  assert.equal(await run({ PORT: String(port) }), 0, 'healthy service: exit 0')
  await app.close()
  assert.equal(await run({ PORT: String(port) }), 1, 'nothing listening: exit 1')
})
