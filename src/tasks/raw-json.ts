/**
 * An output already serialised as JSON, sent as is: for answers that are mostly a large number
 * array copied from OpenAI's answer, where parsing and printing it again would cost more than
 * everything else the request does. A cached answer is its UTF-8 bytes, written out as they are
 * kept rather than decoded and encoded again.
 */
export class RawJson {
  readonly text: string | Buffer

  constructor(text: string | Buffer) {
    this.text = text
  }
}

const OUTPUTS_OPEN = Buffer.from('{"outputs":[')
const OUTPUTS_CLOSE = Buffer.from(']}')
const COMMA = Buffer.from(',')

/**
 * A batch's `{"outputs":[…]}` from each item's JSON: text, or bytes when some items are bytes
 * (from the cache), so that those are copied once rather than turned into text and back.
 */
export function outputsJson(items: Array<string | Buffer>): string | Buffer {
  if (!items.some((item) => typeof item !== 'string')) return `{"outputs":[${items.join(',')}]}`
  const chunks: Buffer[] = [OUTPUTS_OPEN]
  items.forEach((item, i) => {
    if (i) chunks.push(COMMA)
    chunks.push(typeof item === 'string' ? Buffer.from(item) : item)
  })
  chunks.push(OUTPUTS_CLOSE)
  return Buffer.concat(chunks)
}
