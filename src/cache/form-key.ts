import { createHash } from 'node:crypto'
import type { FormData } from 'undici'

/** A digest standing in for bytes in a key: as long as a key whatever their size. */
type Digest = { sha256: string }

/**
 * A multipart OpenAI request as a key's body (cache-key.ts): every field in the form's order
 * (a repeated field's order counts), each file by its name, type and a SHA-256 digest of its
 * bytes, and the text fields named in `digested` (data URLs of audio, say) by a digest too.
 * Never the FormData itself, which prints as `{}`.
 */
export async function formKey(form: FormData, digested: ReadonlySet<string> = new Set()): Promise<object> {
  const fields: Array<[string, KeyValue]> = []
  for (const [name, value] of form) {
    if (typeof value !== 'string') fields.push([name, await fileOf(value)])
    else fields.push([name, digested.has(name) ? textDigest(value) : value])
  }
  return { form: fields }
}

type FileValue = { filename: string; type: string } & Digest
type KeyValue = string | Digest | FileValue

async function fileOf(file: File): Promise<FileValue> {
  return { filename: file.name, type: file.type, ...(await blobDigest(file)) }
}

function textDigest(text: string): Digest {
  return { sha256: createHash('sha256').update(text).digest('base64url') }
}

/** Read as a stream: an upload's blob is its spool file on disk, never held whole in memory. */
async function blobDigest(blob: Blob): Promise<Digest> {
  const hash = createHash('sha256')
  for await (const chunk of blob.stream()) hash.update(chunk)
  return { sha256: hash.digest('base64url') }
}
