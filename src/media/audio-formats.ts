/** MIME type of each audio format OpenAI's speech endpoint produces. */
export const AUDIO_MIME: Record<string, string> = {
  mp3: 'audio/mpeg',
  opus: 'audio/ogg',
  aac: 'audio/aac',
  flac: 'audio/flac',
  wav: 'audio/wav',
  pcm: 'audio/pcm',
}

/** Whether an answer's Content-Type may be audio: an audio type, a plain byte stream, or none given. */
export function isAudioContentType(contentType: string | undefined): boolean {
  const type = contentType?.split(';', 1)[0]!.trim().toLowerCase()
  return !type || type.startsWith('audio/') || type === 'application/octet-stream'
}
