import neostandard from 'neostandard'

// neostandard's rules for JavaScript and TypeScript; layout is Prettier's job (.prettierrc.json).
export default [
  ...neostandard({
    ts: true,
    noStyle: true,
    ignores: ['dist/**', 'test-artifacts/**', 'src/generated/**'],
  }),
  {
    rules: {
      // A variable a closure reads before it is assigned (hooks wired up before what they call) stays `let`.
      'prefer-const': ['error', { destructuring: 'all', ignoreReadBeforeAssign: true }],
    },
  },
]
