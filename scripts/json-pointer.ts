/** One segment of a JSON pointer ('#/components/schemas/A~1B') as the key it names. */
export const unescapePointer = (segment: string): string =>
  decodeURIComponent(segment).replace(/~1/g, '/').replace(/~0/g, '~')
