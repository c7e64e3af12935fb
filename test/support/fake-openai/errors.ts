// OpenAI's error bodies, and the messages OpenAI words its errors with.
import { jsonReply, type Reply } from './reply.ts'

function defaultErrorType(status: number): string {
  if (status === 429) return 'requests'
  if (status >= 500) return 'server_error'
  return 'invalid_request_error'
}

/**
 * OpenAI's error body: `{"error":{"message","type","param","code"}}`.
 * `type` defaults by status (429 'requests', 5xx 'server_error', else 'invalid_request_error');
 * `code` defaults to 'rate_limit_exceeded' for 429 and null otherwise (pass null to force null).
 */
export function openAIError(status: number, message: string, type?: string, code?: string | null): object {
  return {
    error: {
      message,
      type: type ?? defaultErrorType(status),
      param: null,
      code: code === undefined ? (status === 429 ? 'rate_limit_exceeded' : null) : code,
    },
  }
}

export function errorReply(status: number, message: string, type?: string, code?: string | null): Reply {
  return jsonReply(status, openAIError(status, message, type, code))
}

const DEFAULT_ERROR_MESSAGES: Record<number, string> = {
  400: 'Bad request.',
  401: 'Incorrect API key provided: sk-fake***. You can find your API key at https://platform.openai.com/account/api-keys.',
  403: 'Country, region, or territory not supported',
  404: 'The model does not exist or you do not have access to it.',
  429: 'Rate limit reached for requests. Please try again in 7s.',
  500: 'The server had an error while processing your request. Sorry about that!',
  502: 'Bad gateway.',
  503: 'The engine is currently overloaded, please try again later.',
  504: 'Gateway timeout.',
}

/** OpenAI's 429 for a requests-per-minute limit, waiting `wait` (a Go duration, '1s'). */
export function rateLimitMessage(model: string, limit: number, wait: string): string {
  return (
    `Rate limit reached for ${model} in organization org-fake on requests per min (RPM): Limit ${limit}, ` +
    `Used ${limit}, Requested 1. Please try again in ${wait}. Visit https://platform.openai.com/account/rate-limits ` +
    'to learn more.'
  )
}

/** OpenAI's 404 for a model it does not serve (or the key may not use). */
export function modelNotFound(model: string): Reply {
  const message = `The model \`${model}\` does not exist or you do not have access to it.`
  return errorReply(404, message, 'invalid_request_error', 'model_not_found')
}

/** What OpenAI says with a status when the test scripted the status alone. */
export function defaultErrorMessage(status: number): string {
  return DEFAULT_ERROR_MESSAGES[status] ?? `HTTP ${status}`
}

export const JSON_PARSE_ERROR =
  "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. " +
  'The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix ' +
  'this, please contact us through our help center at help.openai.com.)'

export const NO_KEY_ERROR =
  "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth " +
  '(i.e. Authorization: Bearer YOUR_KEY). You can obtain an API key from https://platform.openai.com/account/api-keys.'
