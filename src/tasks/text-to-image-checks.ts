import type { TextToImageInput } from '../generated/task-types.ts'
import { alternatives, characterCount, type FieldProblem } from './field-problems.ts'
import { drawsAnySize, isDallE2, isDallE3, isGptImageModel } from './model-families.ts'

/** The model OpenAI draws with when the request names none. */
export const DEFAULT_IMAGE_MODEL = 'dall-e-2'

export function imageModelOf(input: TextToImageInput): string {
  return input.model ?? DEFAULT_IMAGE_MODEL
}

/** What one family of image models takes, as OpenAI documents it. */
interface ImageFamily {
  sizes: string[]
  /** Also any WIDTHxHEIGHT within OpenAI's bounds (gpt-image-2). */
  anySize: boolean
  qualities: string[]
  maxPromptCharacters: number
  maxImages: number
  takesStyle: boolean
  takesGptImageFields: boolean
}

const GPT_IMAGE: ImageFamily = {
  sizes: ['auto', '1024x1024', '1536x1024', '1024x1536'],
  anySize: false,
  qualities: ['auto', 'low', 'medium', 'high'],
  maxPromptCharacters: 32000,
  maxImages: 10,
  takesStyle: false,
  takesGptImageFields: true,
}
const GPT_IMAGE_2: ImageFamily = { ...GPT_IMAGE, anySize: true }
const DALL_E_3: ImageFamily = {
  sizes: ['1024x1024', '1792x1024', '1024x1792'],
  anySize: false,
  qualities: ['auto', 'standard', 'hd'],
  maxPromptCharacters: 4000,
  maxImages: 1,
  takesStyle: true,
  takesGptImageFields: false,
}
const DALL_E_2: ImageFamily = {
  sizes: ['256x256', '512x512', '1024x1024'],
  anySize: false,
  qualities: ['auto', 'standard'],
  maxPromptCharacters: 1000,
  maxImages: 10,
  takesStyle: false,
  takesGptImageFields: false,
}

const GPT_IMAGE_FIELDS = ['background', 'output-format', 'output-compression', 'moderation'] as const

// OpenAI's bounds for a free size: both sides multiples of 16, 1:3 to 3:1, at most 3840x2160.
// Its pixel and edge limits below that may change, so a size within these is left to OpenAI.
const SIDE_STEP = 16
const MAX_ASPECT_RATIO = 3
const MAX_SIDE = 3840
const MAX_PIXELS = 3840 * 2160

function familyOf(model: string): ImageFamily | undefined {
  if (drawsAnySize(model)) return GPT_IMAGE_2
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
    const message = family.anySize ? freeSizeProblem(input.size) : `must be ${alternatives(family.sizes)}`
    if (message) problems.push({ path: '/size', message: `${message} for ${model}` })
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

/** What is wrong with a WIDTHxHEIGHT (the schema's pattern) that a free-size model cannot draw. */
function freeSizeProblem(size: string): string | undefined {
  const [width = 0, height = 0] = size.split('x').map(Number)
  const [short, long] = width < height ? [width, height] : [height, width]
  if (width % SIDE_STEP || height % SIDE_STEP) return `must have a width and height divisible by ${SIDE_STEP}`
  if (long > MAX_ASPECT_RATIO * short) return 'must have an aspect ratio between 1:3 and 3:1'
  if (long > MAX_SIDE || width * height > MAX_PIXELS) return 'must be at most 3840x2160 or 2160x3840'
  return undefined
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
