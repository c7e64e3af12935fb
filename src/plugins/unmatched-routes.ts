import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { MethodNotAllowedError, NotFoundError } from '../errors.ts'

/**
 * Requests no route takes: a known path asked with another method is a 405 naming the methods it
 * takes in `Allow` (RFC 9110), anything else a 404. Registered before every route, so that it
 * sees them all as they are added.
 */
async function unmatchedRoutes(fastify: FastifyInstance): Promise<void> {
  const methodsByPath = new Map<string, Set<string>>()
  // Wildcard routes (Swagger UI's static files) take every path under their prefix.
  const methodsByPrefix = new Map<string, Set<string>>()

  fastify.addHook('onRoute', (route: RouteOptions) => {
    const wildcard = route.url.endsWith('*')
    const table = wildcard ? methodsByPrefix : methodsByPath
    const key = wildcard ? route.url.slice(0, -1) : route.url
    const methods = table.get(key) ?? new Set<string>()
    for (const method of [route.method].flat()) methods.add(method)
    table.set(key, methods)
  })

  const methodsOf = (path: string): Set<string> | undefined => {
    const exact = methodsByPath.get(path)
    if (exact) return exact
    for (const [prefix, methods] of methodsByPrefix) if (path.startsWith(prefix)) return methods
    return undefined
  }

  fastify.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0]!
    const methods = methodsOf(path)
    // A route of this method that sent its own 404 (a missing static file) is a plain 404.
    if (!methods || methods.has(request.method)) {
      reply.send(new NotFoundError(request.method, path))
      return
    }
    const allow = [...methods].sort().join(', ')
    reply.header('allow', allow).send(new MethodNotAllowedError(request.method, path, allow))
  })
}

export default fp(unmatchedRoutes, { name: 'unmatched-routes' })
