import type { FastifyReply } from 'fastify'

/** The answer's header naming the deployments that served it. */
export const DEPLOYMENT_HEADER = 'x-openai-tasks-deployment'

/** Adds each deployment that answered one of the request's calls to its header (a batch may use several). */
export function deploymentHeader(reply: FastifyReply): (deployment: string) => void {
  // The names so far, kept here rather than read back from the reply on every call.
  let named: string | undefined
  return (deployment) => {
    if (reply.raw.headersSent) return
    if (named === undefined) named = deployment
    else if (!named.split(', ').includes(deployment)) named = `${named}, ${deployment}`
    else return
    reply.header(DEPLOYMENT_HEADER, named)
  }
}
