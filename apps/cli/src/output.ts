/** CLI output: machine-readable JSON with --json, else lines for a person. */
export function print(json: boolean | undefined, value: unknown, lines: string[]): void {
  if (json) process.stdout.write(`${JSON.stringify(value)}\n`);
  else process.stdout.write(`${lines.join('\n')}\n`);
}
