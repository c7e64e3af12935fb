import { invalidFields } from '../errors.ts'

/** A field the chosen model does not take as given: its JSON pointer and what is wrong. */
export interface FieldProblem {
  path: string
  message: string
}

/** One 400 naming every problem, as schema validation reports all of its own at once. */
export function refuseProblems(problems: FieldProblem[]): void {
  if (problems.length) throw invalidFields(problems.map(({ path, message }) => [path, message]))
}

/** Length in characters (code points), the way the schema's maxLength counts. */
export function characterCount(text: string): number {
  return [...text].length
}

/** `a, b or c`, for messages that list the allowed values. */
export function alternatives(values: string[]): string {
  return values.length > 1 ? `${values.slice(0, -1).join(', ')} or ${values.at(-1)}` : (values[0] ?? '')
}
