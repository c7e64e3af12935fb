import type { TaskName } from '../generated/task-types.ts'

/**
 * The tasks whose answers are cached by default, per item: their routes answer with
 * `Cache-Status` and take `Cache-Control`. The other tasks are not cached yet (docs/cache.md).
 */
export const CACHED_TASKS: ReadonlySet<TaskName> = new Set<TaskName>(['text-embeddings'])
