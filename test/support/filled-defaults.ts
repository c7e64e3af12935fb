import { BODY_VALIDATION_OPTIONS } from '../../src/schemas/ajv-options.ts'

/**
 * The schema defaults the service puts into an input the caller left them out of: all of them
 * while body validation fills defaults in, none once it sends only what the caller gave. Tests
 * that assert the exact upstream request hold either way.
 */
export function filledDefaults<T extends Record<string, unknown>>(defaults: T): Partial<T> {
  return BODY_VALIDATION_OPTIONS.useDefaults ? defaults : {}
}
