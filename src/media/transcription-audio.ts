import type { MediaType } from './base64-media.ts'

/** The audio formats OpenAI transcribes, as a 400 lists them. */
export const TRANSCRIPTION_FORMATS = 'flac, mp3, mp4, mpeg, mpga, m4a, ogg, wav or webm audio'

/** File extensions OpenAI accepts, by the extension file-type detects. */
const UPLOAD_EXTENSION: Record<string, string> = {
  flac: 'flac',
  mp3: 'mp3',
  mp4: 'mp4',
  m4a: 'm4a',
  mpga: 'mpga',
  ogg: 'ogg',
  oga: 'ogg',
  opus: 'ogg',
  wav: 'wav',
  webm: 'webm',
}

/** The file extension OpenAI wants for audio of this type; undefined for a format it does not transcribe. */
export function transcriptionExtension(type: MediaType | undefined): string | undefined {
  return type && Object.hasOwn(UPLOAD_EXTENSION, type.ext) ? UPLOAD_EXTENSION[type.ext] : undefined
}
