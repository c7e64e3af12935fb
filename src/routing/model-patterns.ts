/** Whether a model ID matches a pattern: the ID itself, or a prefix ending in `*` (`*` alone: any). */
export function modelPatternMatches(pattern: string, model: string): boolean {
  return pattern.endsWith('*') ? model.startsWith(pattern.slice(0, -1)) : pattern === model
}

/** Whether any of the patterns matches the model. */
export function anyPatternMatches(patterns: readonly string[], model: string): boolean {
  for (const pattern of patterns) if (modelPatternMatches(pattern, model)) return true
  return false
}
