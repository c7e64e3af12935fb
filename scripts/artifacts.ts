import { CONFIG_FILE_DOCS_PATH, renderConfigFileDocs } from './config-file-docs.ts'
import { CONFIG_FILE_TYPES_PATH, renderConfigFileTypes } from './config-file-types.ts'
import { CONFIGURATION_DOCS_PATH, renderConfigurationDocs } from './configuration-docs.ts'
import { ERRORS_DOCS_PATH, renderErrorsDocs } from './errors-docs.ts'
import { renderOpenApi, OPENAPI_PATH } from './openapi.ts'
import { renderOpenAIContract } from './openai-contract.ts'
import { renderTaskTypes, TASK_TYPES_PATH } from './task-types.ts'

export interface Artifact {
  path: string
  content: string
}

/** A generated file whose source is not on this machine: neither written nor checked. */
export interface SkippedArtifact {
  path: string
  skipped: string
}

/** Every generated file, rendered from the current schemas, code and OpenAI's document. */
export async function renderArtifacts(): Promise<Array<Artifact | SkippedArtifact>> {
  const [openapi, types, configFileTypes, configFileDocs, contract] = await Promise.all([
    renderOpenApi(),
    renderTaskTypes(),
    renderConfigFileTypes(),
    renderConfigFileDocs(),
    renderOpenAIContract(),
  ])
  return [
    { path: OPENAPI_PATH, content: openapi },
    { path: TASK_TYPES_PATH, content: types },
    { path: CONFIG_FILE_TYPES_PATH, content: configFileTypes },
    { path: CONFIG_FILE_DOCS_PATH, content: configFileDocs },
    { path: CONFIGURATION_DOCS_PATH, content: renderConfigurationDocs() },
    { path: ERRORS_DOCS_PATH, content: renderErrorsDocs() },
    ...contract,
  ]
}
