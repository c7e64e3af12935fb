import { invalidField, type DetailedError } from '../errors.ts'
import { parseBase64Media, sniffType, standardBase64, unsupportedType } from '../media/base64-media.ts'
import { TRANSCRIPTION_FORMATS, transcriptionExtension } from '../media/transcription-audio.ts'
import type { FieldProblem } from './field-problems.ts'

/** The known-speaker-references as OpenAI gets them, and what is wrong with those that are no audio. */
export interface SpeakerReferences {
  dataUrls: string[] | undefined
  problems: FieldProblem[]
}

/** Each reference checked from its leading bytes only, all of them, so that one 400 names every bad one. */
export async function readSpeakerReferences(references: readonly string[] | undefined): Promise<SpeakerReferences> {
  if (references === undefined) return { dataUrls: undefined, problems: [] }
  const read = await Promise.all(
    references.map((reference, i) =>
      toAudioDataUrl(reference, `/known-speaker-references/${i}`).then(
        (dataUrl) => ({ dataUrl, problems: [] }),
        (error: unknown) => ({ dataUrl: '', problems: problemsOf(error) }),
      ),
    ),
  )
  return { dataUrls: read.map((r) => r.dataUrl), problems: read.flatMap((r) => r.problems) }
}

/** A data URL of audio OpenAI transcribes, retyped by its bytes and in standard base64, as OpenAI reads it. */
async function toAudioDataUrl(value: string, path: string): Promise<string> {
  if (!/^data:/i.test(value)) throw invalidField(path, 'must be a data URL (data:audio/wav;base64,...)')
  const media = parseBase64Media(value, path)
  const type = await sniffType(media.base64)
  if (!type || !transcriptionExtension(type)) {
    throw unsupportedType(path, TRANSCRIPTION_FORMATS, type?.mime ?? media.declaredMime)
  }
  // file-type writes parameters with a space (`audio/ogg; codecs=opus`), which a data URL has not.
  return `data:${type.mime.replace(/\s+/g, '')};base64,${standardBase64(media.base64)}`
}

/** The field problems a 400 of the media helpers carries; any other error is no caller's. */
function problemsOf(error: unknown): FieldProblem[] {
  const { code, details } = error as DetailedError
  if (code !== 'ERR_VALIDATION' || !details?.length) throw error
  return details.map(({ path, message }) => ({ path: path ?? '', message }))
}
