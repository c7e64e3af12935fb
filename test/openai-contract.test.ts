// The generator's cut of OpenAI's document, on a small document of the same shape, so that it is
// checked even where OpenAI's openapi.yaml is not beside the repository.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { CONTRACT_ID, cutContract, OPERATIONS } from '../scripts/openai-contract.ts'

const ref = (name: string): { $ref: string } => ({ $ref: `#/components/schemas/${name}` })

/** Each operation posts a body of its own schema (`chat~1completions` names `chat/completions`) and answers `Answer`. */
function document(extraSchemas: Record<string, unknown> = {}): Record<string, unknown> {
  const paths = Object.fromEntries(
    OPERATIONS.map((op) => [
      op,
      {
        post: {
          requestBody: { content: { 'application/json': { schema: ref(op.slice(1).replaceAll('/', '~1')) } } },
          responses: { 200: { content: { 'application/json': { schema: ref('Answer') } } } },
        },
      },
    ]),
  )
  const requests = Object.fromEntries(
    OPERATIONS.map((op) => [op.slice(1), { type: 'object', properties: { model: ref('Model') } }]),
  )
  return {
    openapi: '3.1.0',
    info: { title: 'OpenAI API', version: '9.9.9', license: { name: 'MIT', identifier: 'MIT' } },
    paths,
    components: {
      schemas: {
        ...requests,
        Model: { anyOf: [{ type: 'string' }, ref('ModelIds')], nullable: true },
        ModelIds: { type: 'string', enum: ['a', 'b'], nullable: true },
        Answer: {
          type: 'object',
          properties: { nullable: { type: 'integer', nullable: true }, $ref: { type: 'string' } },
        },
        ErrorResponse: { type: 'object', properties: { error: { type: 'object' } } },
        Unused: { type: 'object' },
        ...extraSchemas,
      },
    },
  }
}

test('the contract keeps the operations and the components they reach, refs pointing at its $id', () => {
  const contract = cutContract(document())
  assert.equal(contract.$id, CONTRACT_ID)
  assert.deepEqual(contract.source, { title: 'OpenAI API', version: '9.9.9', openapi: '3.1.0', license: 'MIT' })
  assert.deepEqual(Object.keys(contract.operations), [...OPERATIONS])
  assert.deepEqual(contract.operations['/embeddings']!.request, {
    $ref: `${CONTRACT_ID}#/components/schemas/embeddings`,
  })
  assert.equal(contract.operations['/embeddings']!.requestMediaType, 'application/json')
  const kept = Object.keys(contract.components.schemas!)
  assert.deepEqual(kept, [...kept].sort(), 'sorted, for readable diffs')
  assert.ok(!kept.includes('Unused'))
  for (const name of ['Answer', 'ErrorResponse', 'Model', 'ModelIds', 'audio/speech']) {
    assert.ok(kept.includes(name), name)
  }
})

test('nullable becomes a "null" type and enum member, or goes where there is no type', () => {
  const { schemas } = cutContract(document()).components
  assert.deepEqual(schemas!.ModelIds, { type: ['string', 'null'], enum: ['a', 'b', null] })
  assert.deepEqual(schemas!.Model, {
    anyOf: [{ type: 'string' }, { $ref: `${CONTRACT_ID}#/components/schemas/ModelIds` }],
  })
  // Properties that happen to be called `nullable` and `$ref` are names, not keywords.
  assert.deepEqual(schemas!.Answer!.properties, { nullable: { type: ['integer', 'null'] }, $ref: { type: 'string' } })
})

test('a ref to a component the document lacks is an error naming it', () => {
  const doc = document({ ModelIds: ref('Gone') })
  assert.throws(() => cutContract(doc), /#\/components\/schemas\/Gone/)
})
