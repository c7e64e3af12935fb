/** One cached answer, with when it was written, so that its age is known wherever it is kept. */
export interface CachedEntry {
  /** The answer's bytes (the item's output as JSON). */
  value: Buffer
  /** `Date.now()` when it was written, and when it expires. */
  storedAt: number
  expiresAt: number
}

/** Where entries live: this process's memory, or Redis. */
export interface CacheStore {
  /** Each key's entry; undefined when missing, expired, or the store did not answer in time. */
  get(keys: string[]): Promise<Array<CachedEntry | undefined>>
  /** Writes every entry; resolves to whether they were stored (false: dropped, the store is out). */
  set(entries: Array<{ key: string; entry: CachedEntry }>): Promise<boolean>
  close(): Promise<void>
}

/** A copy of `text` (UTF-8) in a buffer of its own: never a view of a larger one it would keep alive. */
export function ownBuffer(text: string): Buffer {
  const bytes = Buffer.byteLength(text)
  const buffer = Buffer.allocUnsafeSlow(bytes)
  // As many bytes as characters: all ASCII (JSON numbers always are), which latin1 copies as they are, faster.
  buffer.write(text, bytes === text.length ? 'latin1' : 'utf8')
  return buffer
}

/** The pieces' bytes, one after another, in a buffer of their own (as ownBuffer's). */
export function ownJoined(pieces: readonly Buffer[], bytes: number): Buffer {
  const buffer = Buffer.allocUnsafeSlow(bytes)
  let offset = 0
  for (const piece of pieces) offset += piece.copy(buffer, offset)
  return buffer
}
