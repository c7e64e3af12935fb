import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseBearer, tokenMatcher } from '../src/bearer-token.ts'

test('parseBearer takes the token of a Bearer header and nothing else', () => {
  assert.equal(parseBearer('Bearer tok-1'), 'tok-1')
  assert.equal(parseBearer('bearer   tok-1  '), 'tok-1')
  for (const header of [undefined, '', 'Bearer', 'Bearer ', 'Basic dG9rOg==', 'Bearer two words', 'tok-1']) {
    assert.equal(parseBearer(header), undefined, String(header))
  }
})

test('tokenMatcher says which token was presented, or -1', () => {
  const match = tokenMatcher(['tok-alpha', 'tok-beta'])
  assert.equal(match('tok-alpha'), 0)
  assert.equal(match('tok-beta'), 1)
  for (const presented of [undefined, '', 'tok-alph', 'tok-alpha-', 'TOK-ALPHA']) {
    assert.equal(match(presented), -1, String(presented))
  }
  assert.equal(tokenMatcher([])('anything'), -1)
})
