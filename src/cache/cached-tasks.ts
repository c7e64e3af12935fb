import type { TaskName } from '../generated/task-types.ts'

/**
 * How a route's answers are cached: `by-default` unless the request says `no-store`;
 * `when-asked` only for a request with `Cache-Control: max-age` (an answer that may rightly
 * differ each time is kept only for a caller who says how long a repeat is good for).
 */
export type CachePolicy = 'by-default' | 'when-asked'

/** Routes not named here are not cached: their answers carry no `Cache-Status` (docs/cache.md). */
const POLICIES: Partial<Record<TaskName, { single: CachePolicy; batch?: CachePolicy }>> = {
  'text-embeddings': { single: 'by-default', batch: 'by-default' },
  'text-generation': { single: 'when-asked' },
  'text-to-speech': { single: 'when-asked' },
  'text-to-image': { single: 'when-asked' },
  'speech-recognition': { single: 'when-asked' },
}

/** The cache policy of a task's single route, or of its batch route. */
export function cachePolicyOf(task: TaskName, route: 'single' | 'batch'): CachePolicy | undefined {
  return POLICIES[task]?.[route]
}
