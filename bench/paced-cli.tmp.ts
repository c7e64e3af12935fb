import { runPaced, stopPacedGenerator } from './paced.ts'
const [url, rate, dur] = process.argv.slice(2)
const r = await runPaced({ url: url!, headers: { 'content-type': 'application/json', authorization: 'Bearer x' }, body: '{"model":"gpt-4o-mini","prompt":"Say hi"}', connections: 50, ratePerSec: Number(rate), durationSec: Number(dur ?? 6), warmupSec: 1 })
console.log(JSON.stringify(r))
await stopPacedGenerator()
