/**
 * An output already serialised as JSON, sent as is: for answers that are mostly a large number
 * array copied from OpenAI's answer, where parsing and printing it again would cost more than
 * everything else the request does.
 */
export class RawJson {
  readonly text: string

  constructor(text: string) {
    this.text = text
  }
}
