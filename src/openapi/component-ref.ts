/** A `$ref` to one of the document's component schemas. */
export function componentRef(name: string): { $ref: string } {
  return { $ref: `#/components/schemas/${name}` }
}

/** A `$ref` to a schema of Fastify's shared schemas (`fastify.addSchema`), which the document lists too. */
export function sharedRef(id: string): { $ref: string } {
  return { $ref: `${id}#` }
}
