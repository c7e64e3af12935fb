/**
 * What the service must answer for each text-to-speech format: the MIME type callers see,
 * written out here rather than taken from src/, so a wrong table there fails the tests.
 */
export const SPEECH_FORMATS: Array<[format: string, mime: string]> = [
  ['mp3', 'audio/mpeg'],
  ['opus', 'audio/ogg'],
  ['aac', 'audio/aac'],
  ['flac', 'audio/flac'],
  ['wav', 'audio/wav'],
  ['pcm', 'audio/pcm'],
]
