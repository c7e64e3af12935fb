// What a test takes from the machine beyond npm packages. Where it is missing the test is
// skipped, saying what to install; under CI, whose .ci/run installs it, the test runs and fails.
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'

/** Where a shell would find `program` on PATH. */
export function findOnPath(program: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue
    try {
      accessSync(join(dir, program), constants.X_OK)
      return join(dir, program)
    } catch {
      // not in this directory
    }
  }
  return undefined
}

/** The `skip` option of a test that needs `what`: why it is skipped, or false when it can run. */
export function needs(what: string, present: boolean, install: string): string | false {
  return !present && !process.env.CI && `needs ${what} (${install})`
}
