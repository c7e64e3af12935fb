/**
 * A media answer (audio) as an entry holds it: its content type, a line feed, then its bytes, so
 * that a hit answers in the type the answer had. A content type never holds a line feed.
 */
const LINE_FEED = 0x0a
/** Longer than any media type the tasks answer in, parameters included. */
const MAX_TYPE_BYTES = 256

/** The entry's pieces for `keep`: the type's line, then the bytes (joined when stored, copied once). */
export function mediaEntry(contentType: string, bytes: readonly Buffer[]): Buffer[] {
  return [Buffer.from(`${contentType}\n`, 'latin1'), ...bytes]
}

/** The type and bytes of an entry mediaEntry wrote. */
export function mediaOf(value: Buffer): { contentType: string; bytes: Buffer } {
  const end = value.subarray(0, MAX_TYPE_BYTES + 1).indexOf(LINE_FEED)
  // A media task's keys name it (cache-key.ts) and it writes only these: anything else is a fault, not a miss.
  if (end <= 0) throw new Error('a cached media entry without its content type')
  return { contentType: value.toString('latin1', 0, end), bytes: value.subarray(end + 1) }
}
