import { CONFIGURATION_DOCS_PATH, renderConfigurationDocs } from './configuration-docs.ts'
import { ERRORS_DOCS_PATH, renderErrorsDocs } from './errors-docs.ts'
import { renderOpenApi, OPENAPI_PATH } from './openapi.ts'
import { renderTaskTypes, TASK_TYPES_PATH } from './task-types.ts'

export interface Artifact {
  path: string
  content: string
}

/** Every generated file, rendered from the current schemas and code. */
export async function renderArtifacts(): Promise<Artifact[]> {
  const [openapi, types] = await Promise.all([renderOpenApi(), renderTaskTypes()])
  return [
    { path: OPENAPI_PATH, content: openapi },
    { path: TASK_TYPES_PATH, content: types },
    { path: CONFIGURATION_DOCS_PATH, content: renderConfigurationDocs() },
    { path: ERRORS_DOCS_PATH, content: renderErrorsDocs() },
  ]
}
