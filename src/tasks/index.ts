import type { TaskName } from '../schemas/load-tasks.ts'
import type { BatchRunner, StreamRunner, TaskRunner } from './task-context.ts'
import { streamTextGeneration } from './text-generation-stream.ts'
import { runSpeechRecognition } from './speech-recognition.ts'
import { runTextEmbeddings, runTextEmbeddingsBatch } from './text-embeddings.ts'
import { runTextGeneration } from './text-generation.ts'
import { runTextToImage, streamTextToImage } from './text-to-image.ts'
import { runTextToSpeech, streamTextToSpeech } from './text-to-speech.ts'

/** The runner of each task; inputs arrive already validated against schemas/tasks.yaml. */
export const TASK_RUNNERS: Record<TaskName, TaskRunner<never, unknown>> = {
  'text-generation': runTextGeneration,
  'text-embeddings': runTextEmbeddings,
  'speech-recognition': runSpeechRecognition,
  'text-to-speech': runTextToSpeech,
  'text-to-image': runTextToImage,
}

/** The tasks that can also answer as a stream; schemas/tasks.yaml lists their media types. */
export const TASK_STREAMERS: Partial<Record<TaskName, StreamRunner<never>>> = {
  'text-generation': streamTextGeneration,
  'text-to-speech': streamTextToSpeech,
  'text-to-image': streamTextToImage,
}

/** Tasks with a batch form better than running each item on its own. */
export const TASK_BATCHERS: Partial<Record<TaskName, BatchRunner<never, unknown>>> = {
  'text-embeddings': runTextEmbeddingsBatch,
}
