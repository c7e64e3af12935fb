import { invalidField, ValidationError, withDetails } from '../errors.ts'

/** A field the chosen model does not take as given: its JSON pointer and what is wrong. */
export interface FieldProblem {
  path: string
  message: string
}

/** One 400 naming every problem, as schema validation reports all of its own at once. */
export function refuseProblems(problems: FieldProblem[]): void {
  if (!problems.length) return
  if (problems.length === 1) throw invalidField(problems[0]!.path, problems[0]!.message)
  const details = problems.flatMap(({ path, message }) => invalidField(path, message).details ?? [])
  throw withDetails(new ValidationError(details.map((d) => `${d.field} ${d.message}`).join('; ')), details)
}

/** Length in characters (code points), the way the schema's maxLength counts. */
export function characterCount(text: string): number {
  return [...text].length
}

/** `a, b or c`, for messages that list the allowed values. */
export function alternatives(values: string[]): string {
  return values.length > 1 ? `${values.slice(0, -1).join(', ')} or ${values.at(-1)}` : (values[0] ?? '')
}
