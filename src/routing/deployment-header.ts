import type { FastifyReply } from 'fastify'

/** The answer's header naming the deployments that served it. */
export const DEPLOYMENT_HEADER = 'x-openai-tasks-deployment'

/** Adds each deployment that answered one of the request's calls to its header (a batch may use several). */
export function deploymentHeader(reply: FastifyReply): (deployment: string) => void {
  return (deployment) => {
    if (reply.raw.headersSent) return
    const named = reply.getHeader(DEPLOYMENT_HEADER)
    if (named === undefined) reply.header(DEPLOYMENT_HEADER, deployment)
    else if (!String(named).split(', ').includes(deployment)) reply.header(DEPLOYMENT_HEADER, `${named}, ${deployment}`)
  }
}
