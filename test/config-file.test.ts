/**
 * CONFIG_FILE: the deployments it describes, with defaults and `${VARIABLE}` references, and a
 * refusal naming the file and the field for anything wrong, also when the real server starts.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { loadConfig } from '../src/config.ts'
import { startServerProcess } from './support/server-process.ts'

const dir = mkdtempSync(join(tmpdir(), 'openai-tasks-config-'))
let files = 0

function configFile(yaml: string): string {
  const path = join(dir, `config-${++files}.yaml`)
  writeFileSync(path, yaml)
  return path
}

/** The message loadConfig refuses the file with. */
function refusal(yaml: string, env: Record<string, string> = {}): { file: string; message: string } {
  const file = configFile(yaml)
  try {
    loadConfig({ CONFIG_FILE: file, ...env })
  } catch (err) {
    return { file, message: (err as Error).message }
  }
  assert.fail('the file was accepted')
}

const TWO_DEPLOYMENTS = `
deployments:
  - name: openai-a
    base-url: https://api.openai.com/v1/
    api-key: \${KEY_A}
    organization: org-123
    models: ["gpt-4o*", text-embedding-3-small]
    weight: 2
  - name: azure-east
    type: azure
    base-url: https://my-resource.openai.azure.com/openai/v1
    api-key: key-\${KEY_B}-suffix
    model-map: { gpt-4o-mini: prod-4o-mini }
    priority: 2
    max-concurrent: 200
`

describe('a configuration file', () => {
  test('gives the deployments, with defaults and the variables it names', () => {
    const config = loadConfig({ CONFIG_FILE: configFile(TWO_DEPLOYMENTS), KEY_A: 'sk-a', KEY_B: 'b' })
    assert.deepEqual(config.deployments, [
      {
        name: 'openai-a',
        type: 'openai',
        baseUrl: 'https://api.openai.com/v1',
        apiKey: 'sk-a',
        organization: 'org-123',
        project: undefined,
        models: ['gpt-4o*', 'text-embedding-3-small'],
        modelMap: {},
        weight: 2,
        priority: 1,
        maxConcurrent: undefined,
        callerKeys: false,
      },
      {
        name: 'azure-east',
        type: 'azure',
        baseUrl: 'https://my-resource.openai.azure.com/openai/v1',
        apiKey: 'key-b-suffix',
        organization: undefined,
        project: undefined,
        models: ['*'],
        modelMap: { 'gpt-4o-mini': 'prod-4o-mini' },
        weight: 1,
        priority: 2,
        maxConcurrent: 200,
        callerKeys: false,
      },
    ])
  })

  test('without deployments, or without a file, leaves the environment one upstream', () => {
    const env = { OPENAI_BASE_URL: 'http://127.0.0.1:9/v1', OPENAI_API_KEY: 'sk-env', OPENAI_PROJECT: 'p' }
    for (const config of [loadConfig(env), loadConfig({ ...env, CONFIG_FILE: configFile('{}\n') })]) {
      assert.deepEqual(config.deployments, [
        {
          name: 'default',
          type: 'openai',
          baseUrl: 'http://127.0.0.1:9/v1',
          apiKey: 'sk-env',
          organization: undefined,
          project: 'p',
          models: ['*'],
          modelMap: {},
          weight: 1,
          priority: 1,
          maxConcurrent: undefined,
          callerKeys: true,
        },
      ])
    }
  })
})

describe('a configuration file is refused, naming the file and the field', () => {
  const cases: Array<[what: string, yaml: string, expected: RegExp[], env?: Record<string, string>]> = [
    [
      'an unknown key, with its line',
      'deployments:\n  - name: a\n    base-url: http://x\n    api-key: k\n    wieght: 2\n',
      [/deployments\[0\]\.wieght \(line 5\): is not a known field/],
    ],
    ['an unknown section', 'deployment: []\n', [/deployment \(line 1\): is not a known field/]],
    [
      'a value of the wrong kind',
      'deployments:\n  - name: A_B\n    base-url: ftp://x\n    api-key: k\n    type: azuer\n    weight: 0\n',
      [
        /deployments\[0\]\.name \(line 2\): must match pattern/,
        /deployments\[0\]\.base-url \(line 3\): must match pattern/,
        /deployments\[0\]\.type \(line 5\): must be one of openai, azure, compatible/,
        /deployments\[0\]\.weight \(line 6\): must be > 0/,
      ],
    ],
    [
      'a missing field',
      'deployments:\n  - name: a\n    api-key: k\n',
      [/deployments\[0\] \(line 2\): base-url is required/],
    ],
    [
      'a variable that is not set',
      // eslint-disable-next-line no-template-curly-in-string -- the file's reference, as written
      'deployments:\n  - name: a\n    base-url: http://x\n    api-key: ${UNSET_KEY_FOR_TEST}\n',
      [/deployments\[0\]\.api-key \(line 4\): \$\{UNSET_KEY_FOR_TEST\} is not set in the environment/],
    ],
    [
      'a duplicate name',
      'deployments:\n  - name: a\n    base-url: http://x\n    api-key: k\n  - name: a\n    base-url: http://y\n    api-key: k\n',
      [/deployments\[1\]\.name: a is already the name of deployments\[0\]/],
    ],
    [
      'a deployment that can serve nobody',
      'deployments:\n  - name: a\n    base-url: http://x\n',
      [/deployments\[0\]: has no api-key and takes no caller keys/],
    ],
    [
      'a model-map entry for a model it does not serve',
      'deployments:\n  - name: a\n    base-url: http://x\n    api-key: k\n    models: [gpt-5*]\n    model-map: { gpt-4o: x }\n',
      [/deployments\[0\]\.model-map\.gpt-4o: gpt-4o is not among the models it serves \(gpt-5\*\)/],
    ],
    [
      'an allowed model no deployment serves',
      'deployments:\n  - name: a\n    base-url: http://x\n    api-key: k\n    models: [gpt-5*]\n',
      [/no deployment serves o3, which ALLOWED_MODELS allows/],
      { ALLOWED_MODELS: 'gpt-5-mini,o3' },
    ],
    ['YAML that does not parse', 'deployments:\n  - name: a\n   base-url: x\n', [/line 3, column \d+: /]],
    ['a duplicate key', 'deployments: []\ndeployments: []\n', [/line 2, column 1: Map keys must be unique/]],
  ]
  for (const [what, yaml, expected, env] of cases) {
    test(what, () => {
      const { file, message } = refusal(yaml, env)
      assert.ok(message.startsWith(`CONFIG_FILE ${file}: `), message)
      for (const pattern of expected) assert.match(message, pattern)
    })
  }

  test('a file that cannot be read', () => {
    assert.throws(
      () => loadConfig({ CONFIG_FILE: join(dir, 'missing.yaml') }),
      /CONFIG_FILE .*missing\.yaml: cannot be read \(ENOENT\)/,
    )
  })

  test('and the server does not start', async (t) => {
    const file = configFile('deployments:\n  - name: a\n    base-url: http://x\n    api-key: k\n    wieght: 2\n')
    const server = startServerProcess(t, { CONFIG_FILE: file })
    await assert.rejects(server, (err: Error) => {
      assert.match(
        err.message,
        new RegExp(`CONFIG_FILE ${file}: deployments\\[0\\]\\.wieght \\(line 5\\): is not a known field`),
      )
      return true
    })
  })
})
