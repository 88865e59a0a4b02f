/**
 * What a management command needs from the world, passed in so that unit tests run every
 * command over a fake ManagementClient and capture what it prints (test/unit/cli-commands.test.ts).
 */
import type { ParsedArgs } from "./args.ts";
import type { ManagementClient } from "./management-client.ts";

export interface SecretRequest {
  /** Shown on the terminal, e.g. "Password: ". */
  prompt: string;
  /** Ask twice and compare (a new password). */
  confirm: boolean;
}

export interface CommandIo {
  /** The back-end the flags chose (src/cli/backend.ts); opened on first use. */
  client(args: ParsedArgs): Promise<ManagementClient>;
  out(text: string): void;
  err(text: string): void;
  /** From the terminal, or from stdin with --password-stdin; never from argv. */
  readSecrets(args: ParsedArgs, requests: SecretRequest[]): Promise<string[]>;
  nowMs(): number;
  sleep(ms: number): Promise<void>;
}
