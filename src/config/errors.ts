// A config error names the file, the key, the problem and the fix. Kept apart from the
// loader so that the CLI can recognise it without loading yaml and typebox.
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly key: string,
    readonly problem: string,
    readonly fix: string,
    readonly line?: number,
  ) {
    super(`${file}${line ? `:${line}` : ''}: ${key || '(top level)'}: ${problem}. ${fix}`);
    this.name = 'ConfigError';
  }
}
