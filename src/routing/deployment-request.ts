import { FormData, type Dispatcher } from 'undici'
import type { Credentials } from '../credentials.ts'
import type { Deployment } from './deployment.ts'

const USER_AGENT = 'openai-tasks/0.1'

/** What a call sends, whichever deployment takes it. */
export interface OutgoingCall {
  /** Path below the base URL, e.g. `/chat/completions`. */
  path: string
  /** The model as the caller named it; each deployment may know it by another name. */
  model: string
  /** A JSON body as an object, or a multipart form. */
  body: object | FormData
  /** The caller's own key, when it spends its own; else the deployment's. */
  credentials: Credentials | undefined
  signal: AbortSignal
  requestId: string
  accept?: string
}

/** The key a call spends on a deployment, and the headers that carry it there. */
export function credentialsFor(call: OutgoingCall, deployment: Deployment): Credentials {
  if (call.credentials) return call.credentials
  const { apiKey, organization, project } = deployment.settings
  return { apiKey: apiKey ?? '', organization, project }
}

/**
 * The HTTP request of a call on a deployment (with `credentialsFor` it): its path below the
 * deployment's base URL, its key in the header its kind expects (Azure's `api-key`, everyone else's bearer token), and the
 * model under the name the deployment knows it by.
 */
export function requestOn(
  deployment: Deployment,
  basePath: string,
  call: OutgoingCall,
  credentials: Credentials,
): Dispatcher.DispatchOptions {
  const headers: Record<string, string> = {
    accept: call.accept ?? 'application/json',
    'user-agent': USER_AGENT,
    'x-client-request-id': call.requestId,
  }
  if (deployment.settings.type === 'azure') headers['api-key'] = credentials.apiKey
  else headers.authorization = `Bearer ${credentials.apiKey}`
  if (credentials.organization) headers['openai-organization'] = credentials.organization
  if (credentials.project) headers['openai-project'] = credentials.project
  const body = bodyOn(deployment, call)
  if (typeof body === 'string') headers['content-type'] = 'application/json'
  return { method: 'POST', path: basePath + call.path, headers, body }
}

/** The body with the model renamed for the deployment, when it renames it. */
function bodyOn(deployment: Deployment, call: OutgoingCall): string | FormData {
  const model = deployment.modelFor(call.model)
  if (call.body instanceof FormData) {
    if (model === call.model) return call.body
    const form = new FormData()
    for (const [name, value] of call.body) form.append(name, name === 'model' ? model : value)
    return form
  }
  return JSON.stringify(model === call.model ? call.body : { ...call.body, model })
}
