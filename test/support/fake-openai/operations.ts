// The operations the stand-in answers, one reply each, keyed by the list the contract is cut for.
import type { OPERATIONS } from '../../../scripts/openai-contract.ts'
import { chatReply } from './chat.ts'
import { embeddingsReply } from './embeddings.ts'
import { imagesReply, type ServedImages } from './images.ts'
import type { Reply } from './reply.ts'
import { speechReply } from './speech.ts'
import { transcriptionReply } from './transcriptions.ts'
import type { RecordedRequest } from './types.ts'

/** A path OpenAI answers POST on ('/chat/completions'), as listed in scripts/openai-contract.ts. */
export type Operation = (typeof OPERATIONS)[number]

/** What a reply may need of the server beside the request: its origin and the images it serves. */
export interface ServerSide {
  origin: string
  served: ServedImages
}

/** The normal answer to a request that passed the checks. */
export type OperationReply = (request: RecordedRequest, server: ServerSide) => Reply | Promise<Reply>

/**
 * One reply per operation of OPERATIONS (scripts/openai-contract.ts), the list `npm run generate`
 * cuts the contract for: an operation added there fails to compile here until it has its reply.
 */
export const REPLIES: { [Op in Operation]: OperationReply } = {
  '/chat/completions': (request) => chatReply(request.json ?? {}),
  '/embeddings': (request) => embeddingsReply(request.json ?? {}),
  '/audio/transcriptions': (request) => transcriptionReply(request.form),
  '/audio/speech': (request) => speechReply(request.json ?? {}),
  '/images/generations': (request, server) => imagesReply(request.json ?? {}, server),
}

export const isOperation = (path: string): path is Operation => Object.hasOwn(REPLIES, path)
