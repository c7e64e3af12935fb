import type { TaskName } from '../schemas/load-tasks.ts'
import type { TaskRunner } from './task-context.ts'
import { runSpeechRecognition } from './speech-recognition.ts'
import { runTextEmbeddings } from './text-embeddings.ts'
import { runTextGeneration } from './text-generation.ts'
import { runTextToImage } from './text-to-image.ts'
import { runTextToSpeech } from './text-to-speech.ts'

/** The runner of each task; inputs arrive already validated against schemas/tasks.yaml. */
export const TASK_RUNNERS: Record<TaskName, TaskRunner<never, unknown>> = {
  'text-generation': runTextGeneration,
  'text-embeddings': runTextEmbeddings,
  'speech-recognition': runSpeechRecognition,
  'text-to-speech': runTextToSpeech,
  'text-to-image': runTextToImage,
}
