/** What a verb may touch: its output streams and the environment (config is loaded from `env`). */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /** True when stderr is a terminal: progress is drawn in place; otherwise it is written as plain lines. */
  readonly stderrIsTty?: boolean;
  /** Aborted on SIGINT/SIGTERM: long-running verbs stop cleanly (a re-encryption job releases its lease). */
  readonly signal?: AbortSignal;
}

export interface Verb {
  readonly name: string;
  readonly summary: string;
  readonly help: string;
  run(args: readonly string[], io: CliIo): Promise<number>;
}
