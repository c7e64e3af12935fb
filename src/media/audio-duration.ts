import { parseBlob } from 'music-metadata'

/**
 * How long an audio file plays, in seconds, read from the file itself (its header, or a scan of
 * its frames where the format needs one); undefined when it cannot tell.
 */
export async function audioDuration(file: Blob): Promise<number | undefined> {
  try {
    const { format } = await parseBlob(file, { duration: true, skipCovers: true })
    const seconds = format.duration
    return seconds !== undefined && Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined
  } catch {
    return undefined
  }
}
