import neostandard from 'neostandard'

// neostandard's rules for JavaScript and TypeScript; layout is Prettier's job (.prettierrc.json).
export default neostandard({
  ts: true,
  noStyle: true,
  ignores: ['dist/**', 'test-artifacts/**', 'src/generated/**'],
})
