import type { TaskName } from '../generated/task-types.ts'
import type { TaskModule } from './task-context.ts'
import { streamTextGeneration } from './text-generation-stream.ts'
import { runSpeechRecognition } from './speech-recognition.ts'
import { streamSpeechRecognition } from './speech-recognition-stream.ts'
import { runTextEmbeddings, runTextEmbeddingsBatch } from './text-embeddings.ts'
import { runTextGeneration } from './text-generation.ts'
import { runTextToImage, streamTextToImage } from './text-to-image.ts'
import { runTextToSpeech, streamTextToSpeech } from './text-to-speech.ts'

/**
 * How each task of schemas/tasks.yaml runs, typed by its generated input and output: a task
 * missing here, or a runner of the wrong types, fails to compile.
 */
export const TASKS: { [N in TaskName]: TaskModule<N> } = {
  'text-generation': { run: runTextGeneration, stream: streamTextGeneration },
  'text-embeddings': { run: runTextEmbeddings, batch: runTextEmbeddingsBatch },
  'speech-recognition': { run: runSpeechRecognition, stream: streamSpeechRecognition },
  'text-to-speech': { run: runTextToSpeech, stream: streamTextToSpeech },
  'text-to-image': { run: runTextToImage, stream: streamTextToImage },
}
