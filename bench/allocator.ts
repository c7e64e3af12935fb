/**
 * The memory allocator the Docker image runs the service with (its runtime stage preloads
 * jemalloc), so that the benches measure memory the way production has it.
 */
import { existsSync, readFileSync } from 'node:fs'
import { basename, join } from 'node:path'

export interface Allocator {
  /** e.g. `jemalloc (MALLOC_CONF=…)`, or `glibc malloc` and why. */
  description: string
  /** What the service's environment needs for it. */
  env: Record<string, string>
}

/** LD_PRELOAD and MALLOC_CONF as the Dockerfile in `dir` sets them, comments left out. */
export function imageAllocatorEnv(dir: string): { preload: string; mallocConf: string } | undefined {
  let text: string
  try {
    text = readFileSync(join(dir, 'Dockerfile'), 'utf8')
  } catch {
    return undefined
  }
  const instructions = text
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
  const preload = /\bLD_PRELOAD=(\S+)/.exec(instructions)?.[1]
  const mallocConf = /\bMALLOC_CONF=(\S+)/.exec(instructions)?.[1]
  return preload && mallocConf ? { preload, mallocConf } : undefined
}

/** Where this machine keeps a shared library the image links to a path of its own (Debian's differs per architecture). */
export function findLibrary(name: string): string | undefined {
  const triplet = ({ x64: 'x86_64', arm64: 'aarch64' } as Record<string, string>)[process.arch] ?? process.arch
  return [
    `/usr/local/lib/${name}`,
    `/usr/lib/${triplet}-linux-gnu/${name}`,
    `/usr/lib64/${name}`,
    `/usr/lib/${name}`,
  ].find((path) => existsSync(path))
}

/** The image's allocator when this machine has the library; glibc's malloc otherwise, said so. */
export function imageAllocator(dir: string): Allocator {
  const image = imageAllocatorEnv(dir)
  if (!image) return { description: 'glibc malloc (the Dockerfile preloads no allocator)', env: {} }
  const library = findLibrary(basename(image.preload))
  if (!library) {
    return {
      description: `glibc malloc (${basename(image.preload)}, which the image preloads, is not on this machine)`,
      env: {},
    }
  }
  return {
    description: `${basename(image.preload).replace(/^lib|\.so.*$/g, '')} (MALLOC_CONF=${image.mallocConf}), as in the image`,
    env: { LD_PRELOAD: library, MALLOC_CONF: image.mallocConf },
  }
}
