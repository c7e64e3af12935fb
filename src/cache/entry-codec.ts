import type { CachedEntry } from './cache-store.ts'

const COLON = 0x3a
/** Two 13-digit times and their colons, with room to spare. */
const MAX_HEADER_BYTES = 40

/** An entry as one Redis string: `<storedAt>:<expiresAt>:` then the answer's bytes. */
export function encodeEntry({ value, storedAt, expiresAt }: CachedEntry): Buffer {
  return Buffer.concat([Buffer.from(`${storedAt}:${expiresAt}:`, 'latin1'), value])
}

/** The entry a Redis string holds; undefined for anything else (written by something else, cut short). */
export function decodeEntry(raw: Buffer | null): CachedEntry | undefined {
  if (!raw) return undefined
  const first = raw.indexOf(COLON)
  const second = first < 0 ? -1 : raw.indexOf(COLON, first + 1)
  if (second < 0 || second > MAX_HEADER_BYTES) return undefined
  const storedAt = Number(raw.toString('latin1', 0, first))
  const expiresAt = Number(raw.toString('latin1', first + 1, second))
  if (!Number.isSafeInteger(storedAt) || !Number.isSafeInteger(expiresAt) || first === 0) return undefined
  return { value: raw.subarray(second + 1), storedAt, expiresAt }
}
