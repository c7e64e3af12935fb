import type { TextToImageInput } from '../generated/task-types.ts'
import { alternatives, characterCount, type FieldProblem } from './field-problems.ts'
import { isDallE2, isDallE3, isGptImageModel } from './model-families.ts'

/** The model OpenAI draws with when the request names none. */
export const DEFAULT_IMAGE_MODEL = 'dall-e-2'

export function imageModelOf(input: TextToImageInput): string {
  return input.model ?? DEFAULT_IMAGE_MODEL
}

/** What one family of image models takes, as OpenAI documents it. */
interface ImageFamily {
  sizes: string[]
  qualities: string[]
  maxPromptCharacters: number
  maxImages: number
  takesStyle: boolean
  takesGptImageFields: boolean
}

const GPT_IMAGE: ImageFamily = {
  sizes: ['auto', '1024x1024', '1536x1024', '1024x1536'],
  qualities: ['auto', 'low', 'medium', 'high'],
  maxPromptCharacters: 32000,
  maxImages: 10,
  takesStyle: false,
  takesGptImageFields: true,
}
const DALL_E_3: ImageFamily = {
  sizes: ['1024x1024', '1792x1024', '1024x1792'],
  qualities: ['auto', 'standard', 'hd'],
  maxPromptCharacters: 4000,
  maxImages: 1,
  takesStyle: true,
  takesGptImageFields: false,
}
const DALL_E_2: ImageFamily = {
  sizes: ['256x256', '512x512', '1024x1024'],
  qualities: ['auto', 'standard'],
  maxPromptCharacters: 1000,
  maxImages: 10,
  takesStyle: false,
  takesGptImageFields: false,
}

const GPT_IMAGE_FIELDS = ['background', 'output-format', 'output-compression', 'moderation'] as const

function familyOf(model: string): ImageFamily | undefined {
  if (isGptImageModel(model)) return GPT_IMAGE
  if (isDallE3(model)) return DALL_E_3
  if (isDallE2(model)) return DALL_E_2
  return undefined
}

/**
 * The fields the chosen model does not take as given. Models of no known family (an
 * OpenAI-compatible server's own) are not checked: their server decides.
 */
export function imageInputProblems(input: TextToImageInput): FieldProblem[] {
  const model = imageModelOf(input)
  const family = familyOf(model)
  if (!family) return []
  const problems: FieldProblem[] = []
  if (input.size !== undefined && !family.sizes.includes(input.size)) {
    problems.push({ path: '/size', message: `must be ${alternatives(family.sizes)} for ${model}` })
  }
  if (input.quality !== undefined && !family.qualities.includes(input.quality)) {
    problems.push({ path: '/quality', message: `must be ${alternatives(family.qualities)} for ${model}` })
  }
  if (input.style !== undefined && !family.takesStyle) {
    problems.push({ path: '/style', message: `is for dall-e-3 only, not ${model}` })
  }
  if (!family.takesGptImageFields) {
    for (const field of GPT_IMAGE_FIELDS) {
      if (input[field] !== undefined) {
        problems.push({ path: `/${field}`, message: `is for the GPT image models only, not ${model}` })
      }
    }
  }
  if (input.n !== undefined && input.n > family.maxImages) {
    problems.push({ path: '/n', message: `must be at most ${family.maxImages} for ${model}` })
  }
  if (characterCount(input.prompt) > family.maxPromptCharacters) {
    problems.push({ path: '/prompt', message: `must be at most ${family.maxPromptCharacters} characters for ${model}` })
  }
  if (family.takesGptImageFields) problems.push(...outputFormatProblems(input))
  return problems
}

/** OpenAI compresses only JPEG and WebP, and a JPEG cannot be transparent. */
function outputFormatProblems(input: TextToImageInput): FieldProblem[] {
  const format = input['output-format']
  const problems: FieldProblem[] = []
  if (input['output-compression'] !== undefined && format !== 'jpeg' && format !== 'webp') {
    problems.push({ path: '/output-compression', message: 'needs output-format jpeg or webp; a PNG is not compressed' })
  }
  if (input.background === 'transparent' && format === 'jpeg') {
    problems.push({
      path: '/background',
      message: 'transparent needs output-format png or webp; a JPEG has no transparency',
    })
  }
  return problems
}
