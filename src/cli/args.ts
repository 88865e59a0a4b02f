/** A small argv parser: `--flag value`, `--flag=value`, boolean flags, positionals. */
export class UsageError extends Error {}

export interface ParsedArgs {
  flags: Map<string, string | true>;
  positionals: string[];
}

export function parseArgs(
  argv: readonly string[],
  valueFlags: readonly string[],
  booleanFlags: readonly string[],
): ParsedArgs {
  const flags = new Map<string, string | true>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = (eq === -1 ? arg : arg.slice(0, eq)).replace(/^--?/, "");
    const canonical = name === "h" ? "help" : name;
    if (booleanFlags.includes(canonical) || canonical === "help") {
      if (eq !== -1) throw new UsageError(`--${canonical} takes no value`);
      flags.set(canonical, true);
    } else if (valueFlags.includes(canonical)) {
      const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
      if (value === undefined || value === "") throw new UsageError(`--${canonical} needs a value`);
      flags.set(canonical, value);
    } else {
      throw new UsageError(`unknown option ${arg}`);
    }
  }
  return { flags, positionals };
}

export function stringFlag(args: ParsedArgs, name: string): string | undefined {
  const value = args.flags.get(name);
  return typeof value === "string" ? value : undefined;
}

/** The command could not do what was asked (server refused, unreachable, bad local file): exit 1. */
export class CommandFailed extends Error {}
