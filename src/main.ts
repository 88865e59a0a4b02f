/**
 * regauth's command line. Each command parses its arguments, calls into the domain, and maps
 * failures to exit codes: 0 ok, 1 failed, 2 usage error.
 */
import { resolve } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { adminPasswordBanner, ensureAdmin } from "./accounts/bootstrap.ts";
import { PasswordVerifier } from "./authn/password-verifier.ts";
import { DATABASE_FLAGS, openedDatabasePath } from "./cli/accounts-database.ts";
import { ADMIN_USAGE, adminCommand } from "./cli/admin.ts";
import { KEY_USAGE, keyCommand } from "./cli/key.ts";
import { CommandFailed, parseArgs, stringFlag, UsageError } from "./cli/args.ts";
import { BACKUP_USAGE, BACKUP_VALUE_FLAGS, backupCommand } from "./cli/backup.ts";
import { AUDIT_BOOLEAN_FLAGS, AUDIT_USAGE, AUDIT_VALUE_FLAGS, auditCommand } from "./cli/audit.ts";
import type { CommandIo } from "./cli/command-io.ts";
import { CLIENT_BOOLEAN_FLAGS, CLIENT_VALUE_FLAGS, processIo } from "./cli/backend.ts";
import {
  LOGIN_BOOLEAN_FLAGS,
  LOGIN_USAGE,
  LOGIN_VALUE_FLAGS,
  LOGOUT_USAGE,
  loginCommand,
  logoutCommand,
} from "./cli/login.ts";
import { GROUP_USAGE, groupCommand, PERM_USAGE, PERM_VALUE_FLAGS, permCommand } from "./cli/perm.ts";
import { ROBOT_USAGE, robotCommand, TOKEN_USAGE, TOKEN_VALUE_FLAGS, tokenCommand } from "./cli/token.ts";
import { USER_BOOLEAN_FLAGS, USER_USAGE, USER_VALUE_FLAGS, userCommand } from "./cli/user.ts";
import {
  EMBEDDED_DEFAULT_SOURCE,
  embeddedDefaultConfig,
  type LoadedConfig,
  loadConfigFile,
  parseListenAddress,
  prepareConfig,
} from "./config/load.ts";
import { rmSync } from "node:fs";
import { backgroundWriterFor } from "./db/background-writer.ts";
import { DatabaseError, databasePath, openDatabase, REQUEST_PATH_BUSY_TIMEOUT_MS } from "./db/database.ts";
import { describeStoreError } from "./db/store-errors.ts";
import { AppError, ConfigError } from "./errors.ts";
import { log } from "./log.ts";
import { startMetricsExporter } from "./metrics/exporter.ts";
import { renderRegistryConfig } from "./registry-config.ts";
import { CurrentIssuer } from "./reload/current-issuer.ts";
import { type Reloader, reloadConfig } from "./reload/reload-config.ts";
import {
  buildApiApp,
  buildApp,
  buildIssuer,
  checkCanListen,
  closeIssuer,
  keptAcrossReload,
  ListenError,
  listen,
  managementServices,
} from "./server.ts";

declare const REGAUTH_VERSION: string | undefined;
export const VERSION = typeof REGAUTH_VERSION === "string" ? REGAUTH_VERSION : `${pkg.version}-dev`;

interface Command {
  summary: string;
  usage: string;
  valueFlags: string[];
  booleanFlags: string[];
  run(args: ReturnType<typeof parseArgs>, io: CommandIo): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  serve: {
    summary: "run the token server",
    usage: `regauth serve [--config FILE] [--data-dir DIR] [--addr HOST:PORT] [--reinitialize]

Without --config, runs on the embedded default: 127.0.0.1:5001, issuer "regauth", service
"registry", a signing key generated in the data directory on first run.
The listen address is --addr, else $REGAUTH_ADDR, else server.addr from the config, else
127.0.0.1:5001. When it cannot be bound, serve stops before creating anything.
The data directory is --data-dir, else data_dir from the config, else $STATE_DIRECTORY,
else ./regauth-data. It holds the accounts database, regauth.db; when that has no
administrator, serve creates the user admin and prints its password once on stdout
(recovery: regauth admin reset-password).

A data directory that holds a previous run but lost its database (missing or 0 bytes) or its
signing key pair is refused with what is missing; restore it from the backup, or pass
--reinitialize to start over with what is missing created anew (a new empty database and
admin, or a new key pair that every registry must then be given).`,
    valueFlags: ["config", "data-dir", "addr"],
    booleanFlags: ["reinitialize"],
    run: serve,
  },
  "check-config": {
    summary: "validate a config file; print every problem with its key path",
    usage: "regauth check-config FILE\n\nExits 0 when the file is valid, 1 when it is not.",
    valueFlags: [],
    booleanFlags: [],
    run: checkConfig,
  },
  "hash-password": {
    summary: "read a password on stdin, print its bcrypt hash for the users section",
    usage:
      "regauth hash-password [--cost N] < password.txt\n\nOne trailing newline is removed. Default cost 10.",
    valueFlags: ["cost"],
    booleanFlags: [],
    run: hashPassword,
  },
  "registry-config": {
    summary: "print the auth block for the registry's config.yml",
    usage: `regauth registry-config [--config FILE] [--data-dir DIR] [--addr HOST:PORT]

Give it the flags serve runs with (serve logs the exact command on every start).`,
    valueFlags: ["config", "data-dir", "addr"],
    booleanFlags: [],
    run: registryConfig,
  },
  user: {
    summary: "manage users (add, list, show, passwd, disable, enable, promote, demote, rm, release)",
    usage: USER_USAGE,
    valueFlags: [...CLIENT_VALUE_FLAGS, ...USER_VALUE_FLAGS],
    booleanFlags: [...CLIENT_BOOLEAN_FLAGS, ...USER_BOOLEAN_FLAGS],
    run: userCommand,
  },
  perm: {
    summary: "grant, revoke and list read/write/admin permissions",
    usage: PERM_USAGE,
    valueFlags: [...CLIENT_VALUE_FLAGS, ...PERM_VALUE_FLAGS],
    booleanFlags: CLIENT_BOOLEAN_FLAGS,
    run: permCommand,
  },
  group: {
    summary: "manage groups of users (create, delete, add-member, remove-member, list, show)",
    usage: GROUP_USAGE,
    valueFlags: CLIENT_VALUE_FLAGS,
    booleanFlags: CLIENT_BOOLEAN_FLAGS,
    run: groupCommand,
  },
  token: {
    summary: "access tokens for docker login and CI (create, list, revoke)",
    usage: TOKEN_USAGE,
    valueFlags: [...CLIENT_VALUE_FLAGS, ...TOKEN_VALUE_FLAGS],
    booleanFlags: CLIENT_BOOLEAN_FLAGS,
    run: tokenCommand,
  },
  robot: {
    summary: "robot accounts for CI, with tokens as their only credentials (create, list, rm, token)",
    usage: ROBOT_USAGE,
    valueFlags: [...CLIENT_VALUE_FLAGS, ...TOKEN_VALUE_FLAGS],
    booleanFlags: CLIENT_BOOLEAN_FLAGS,
    run: robotCommand,
  },
  audit: {
    summary: "query the audit log (--since, --actor, --repository, --kind, --follow)",
    usage: AUDIT_USAGE,
    valueFlags: [...CLIENT_VALUE_FLAGS, ...AUDIT_VALUE_FLAGS],
    booleanFlags: [...CLIENT_BOOLEAN_FLAGS, ...AUDIT_BOOLEAN_FLAGS],
    run: auditCommand,
  },
  login: {
    summary: "log in to a regauth server; the management commands then act there",
    usage: LOGIN_USAGE,
    valueFlags: LOGIN_VALUE_FLAGS,
    booleanFlags: LOGIN_BOOLEAN_FLAGS,
    run: loginCommand,
  },
  logout: {
    summary: "revoke the token of regauth login and forget it",
    usage: LOGOUT_USAGE,
    valueFlags: [],
    booleanFlags: [],
    run: logoutCommand,
  },
  key: {
    summary: "rotate and list the token signing keys of the data directory",
    usage: KEY_USAGE,
    valueFlags: ["config", "data-dir"],
    booleanFlags: [],
    run: (args, io) =>
      keyCommand(args, io, async (a) => {
        const loaded = await loadForCommand(a);
        // As registry-config: keys and database together, so a later start sees a whole data directory.
        openDatabase(databasePath(loaded.dataDir)).close();
        return loaded;
      }),
  },
  backup: {
    summary: "copy the data directory (database and keys) into a new directory, while serving",
    usage: BACKUP_USAGE,
    valueFlags: BACKUP_VALUE_FLAGS,
    booleanFlags: [],
    run: (args) => backupCommand(args, (parsed) => loadForCommand(parsed, false)),
  },
  admin: {
    summary: "reset-password: a new password for the admin user, offline",
    usage: ADMIN_USAGE,
    valueFlags: DATABASE_FLAGS,
    booleanFlags: [],
    run: adminCommand,
  },
};

const COMMANDS_WITH_SUBCOMMANDS = new Set(["user", "perm", "group", "token", "robot", "admin", "key"]);

function mainUsage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(16)} ${c.summary}`);
  return `regauth ${VERSION}: Docker Registry v2 token server

Usage: regauth COMMAND [options]

Commands:
${lines.join("\n")}

Options:
  --version        print the version
  -h, --help       help for regauth or for a command (regauth serve --help)
`;
}

/** Runs one command line; `io` is the terminal, or a fake in the CLI's unit tests. */
export async function main(argv: readonly string[], io: CommandIo = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    io.out(mainUsage());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "version") {
    io.out(`regauth ${VERSION}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.err(`regauth: unknown command ${JSON.stringify(name)}\n\n${mainUsage()}`);
    return 2;
  }
  try {
    const args = parseArgs(rest, command.valueFlags, command.booleanFlags);
    if (args.flags.has("help")) {
      io.out(`${command.usage}\n`);
      return 0;
    }
    return await command.run(args, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`regauth ${name}: ${error.message}\n\n${command.usage}\n`);
      return 2;
    }
    if (error instanceof ConfigError) {
      io.err(`regauth: invalid configuration\n${error.message}\n`);
      return 1;
    }
    // The command and its subcommand: "regauth user add: cannot write .../regauth.db: the disk is full".
    const sub =
      COMMANDS_WITH_SUBCOMMANDS.has(name) && rest[0] !== undefined && !rest[0].startsWith("-")
        ? ` ${rest[0]}`
        : "";
    if (
      error instanceof CommandFailed ||
      error instanceof DatabaseError ||
      error instanceof ListenError ||
      (error instanceof AppError && error.status < 500)
    ) {
      io.err(`regauth ${name}${sub}: ${error.message}\n`);
      return 1;
    }
    const path = openedDatabasePath();
    const described = path === null ? error : describeStoreError(error, path, "cannot write");
    if (described instanceof DatabaseError) {
      // A full disk, a held lock, a read-only file during a command: the command, the file and the fault.
      io.err(`regauth ${name}${sub}: ${described.message}\n`);
      return 1;
    }
    throw error;
  }
}

async function loadForCommand(
  args: ReturnType<typeof parseArgs>,
  createFiles = true,
  /** For a reload: the data directory serve runs with, whatever the file says now; nothing re-created. */
  reloadInto?: string,
): Promise<LoadedConfig> {
  const configPath = stringFlag(args, "config");
  const options = {
    dataDir: reloadInto ?? stringFlag(args, "data-dir"),
    createFiles,
    addr: listenAddressOverride(args),
    reinitialize: reloadInto === undefined && args.flags.has("reinitialize"),
  };
  const loaded = await (configPath === undefined
    ? prepareConfig(embeddedDefaultConfig(), EMBEDDED_DEFAULT_SOURCE, options)
    : loadConfigFile(configPath, options));
  log.configure(loaded.config.log);
  return loaded;
}

/**
 * `--addr`, else $REGAUTH_ADDR (empty = unset), else undefined: the config's server.addr, else the
 * default. So a taken port 5001 needs no config file (issue 12; README "Listen address").
 */
function listenAddressOverride(args: ReturnType<typeof parseArgs>): string | undefined {
  const flag = stringFlag(args, "addr");
  const [addr, origin] =
    flag !== undefined ? [flag, "--addr"] : [process.env.REGAUTH_ADDR || undefined, "REGAUTH_ADDR"];
  if (addr !== undefined && !parseListenAddress(addr))
    throw new UsageError(
      `${origin} must be HOST:PORT (e.g. 127.0.0.1:5002 or :5002), got ${JSON.stringify(addr)}`,
    );
  return addr;
}

/**
 * Loads the config without creating files, holding back its log lines (an expiring certificate,
 * a key file others can read): the real load right after logs them once. They are written when
 * this load fails, since then there is no second one.
 */
async function validateQuietly(args: ReturnType<typeof parseArgs>): Promise<LoadedConfig> {
  const lines: string[] = [];
  const restore = log.capture(lines);
  try {
    return await loadForCommand(args, false);
  } catch (error) {
    restore();
    for (const line of lines) process.stderr.write(`${line}\n`);
    throw error;
  } finally {
    restore();
  }
}

/** The `regauth registry-config` command that prints the block for this server, from any directory. */
function registryConfigCommand(args: ReturnType<typeof parseArgs>, loaded: LoadedConfig): string {
  const words = ["regauth", "registry-config"];
  if (loaded.source !== EMBEDDED_DEFAULT_SOURCE) words.push("--config", resolve(loaded.source));
  // Always the data directory: outside the service $STATE_DIRECTORY is unset (docs/deployment.md).
  words.push("--data-dir", loaded.dataDir);
  const addr = listenAddressOverride(args);
  if (addr !== undefined) words.push("--addr", addr);
  return words
    .map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`))
    .join(" ");
}

async function serve(args: ReturnType<typeof parseArgs>): Promise<number> {
  if (args.positionals.length > 0)
    throw new UsageError(`unexpected argument ${args.positionals[0]}; the config file goes after --config`);
  // Validate and check the listen address before creating anything: a broken config or a taken
  // port must not leave a fresh data directory, key and database behind (issue 12).
  const validated = await validateQuietly(args);
  checkCanListen(validated.config.server);
  // Before anything is created too: an unreadable bearer_token_file is a config error (and the
  // one import of prom-client, when metrics are on).
  const metricsExporter = await startMetricsExporter(validated.config.metrics, validated.source);
  const loaded = await loadForCommand(args);
  const signingKey = loaded.signingKey;
  if (!signingKey) throw new Error("no signing key"); // createFiles=true always resolves one
  const { database, bootstrap } = await openAndBootstrap(loaded);
  if (bootstrap.kind === "created") {
    // stdout only, once; never the log (README: under systemd, stdout goes to the journal).
    process.stdout.write(
      adminPasswordBanner(
        bootstrap.credentials,
        "regauth: created the administrator account",
        loaded.dataDir,
      ),
    );
  } else if (bootstrap.kind === "config-user") {
    log.warn("no administrator in the database; not creating admin, a user of the config's users section", {
      fix: "regauth user add NAME, then regauth user promote NAME",
    });
  } else if (bootstrap.kind === "name-taken") {
    log.warn("no administrator in the database, and the name admin is taken by an ordinary user or retired", {
      fix: "regauth admin reset-password",
    });
  }
  const verifier = new PasswordVerifier();
  const issuer = buildIssuer(loaded, signingKey, verifier, database);
  // Retention by age and count, on the background writer's thread: at start, then every 10 minutes.
  issuer.audit?.log.startPruning();
  const services = managementServices(loaded, issuer, database);
  // Requests go through `current`, which SIGHUP swaps for the issuer of the re-read config.
  const current = new CurrentIssuer(issuer);
  const running = listen(
    loaded,
    buildApp(loaded, current, services, metricsExporter),
    buildApiApp(loaded, current, services),
  );
  if (loaded.generatedKey) {
    process.stdout.write(
      `\nGenerated a signing key and certificate in ${loaded.dataDir}.\n\n${renderRegistryConfig(loaded)}\n`,
    );
  }
  log.info("regauth listening", {
    version: VERSION,
    url: running.url,
    ...(running.apiUrl ? { api_url: running.apiUrl } : {}),
    config: loaded.source,
    data_dir: loaded.dataDir,
    users: Object.keys(loaded.config.users ?? {}).length,
    authn: issuer.authenticators.map((a) => a.name).join(","),
    authz: issuer.authorizers.map((a) => a.name).join(","),
    registration: loaded.config.registration.mode,
    acl_rules: loaded.acl.rules.length,
    token_ttl_seconds: loaded.config.token.expiration,
    alg: signingKey.alg,
    kid: signingKey.kid,
  });
  log.info("to print the registry's auth block, run", { command: registryConfigCommand(args, loaded) });
  // One reload at a time, in the order the signals came (systemctl reload, kill -HUP).
  let serving = loaded;
  const reloader: Reloader = {
    load: () => loadForCommand(args, true, loaded.dataDir),
    build: (next) => {
      if (!next.signingKey) throw new Error("no signing key"); // createFiles=true always resolves one
      // The data directory's live key set follows `regauth key rotate` on its own timer and writes
      // the published bundle and JWKS: one of it, given the re-read keys once the rest is built.
      const liveKeys = current.issuer.keySet;
      const keepKeys =
        liveKeys !== undefined &&
        next.keySet !== null &&
        Boolean(next.keyPaths?.inDataDir) === Boolean(serving.keyPaths?.inDataDir);
      const issuer = buildIssuer(next, next.signingKey, verifier, database, {
        ...keptAcrossReload(current.issuer),
        ...(keepKeys ? { keySet: liveKeys } : {}),
      });
      if (keepKeys && next.keySet) liveKeys.replace(next.keySet);
      return issuer;
    },
    close: closeIssuer,
    current,
  };
  let reloads = Promise.resolve();
  const onReloadSignal = () => {
    log.info("reloading the config", { signal: "SIGHUP", config: serving.source });
    reloads = reloads.then(async () => {
      serving = await reloadConfig(serving, reloader);
    });
  };
  process.on("SIGHUP", onReloadSignal);
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      log.info("shutting down", { signal });
      process.off("SIGHUP", onReloadSignal);
      void running
        .stop()
        .finally(() => backgroundWriterFor(database).close())
        .finally(() => database.close())
        .finally(resolve);
    };
    process.once("SIGTERM", () => shutdown("SIGTERM"));
    process.once("SIGINT", () => shutdown("SIGINT"));
  });
  return 0;
}

/**
 * Opens the database and makes sure it has an administrator. When this start is a first run and
 * fails here (a full disk), the files it created are removed again, so that the next start is a
 * first run too instead of "the database is missing next to token.key" (issue 9, item 3).
 */
async function openAndBootstrap(loaded: LoadedConfig) {
  const path = databasePath(loaded.dataDir);
  try {
    const database = openDatabase(path, { quickCheck: true });
    const bootstrap = await ensureAdmin(database, Math.floor(Date.now() / 1000), loaded.config.users);
    // From here on a lock wait holds every request: keep it short, answer 503 beyond it.
    database.run(`PRAGMA busy_timeout = ${REQUEST_PATH_BUSY_TIMEOUT_MS}`);
    return { database, bootstrap };
  } catch (error) {
    if (loaded.firstRun) {
      for (const file of [...loaded.createdFiles, path, `${path}-wal`, `${path}-shm`])
        rmSync(file, { force: true });
    }
    throw describeStoreError(error, path, "cannot create the accounts database");
  }
}

async function checkConfig(args: ReturnType<typeof parseArgs>): Promise<number> {
  const [file, ...extra] = args.positionals;
  if (file === undefined) throw new UsageError("which file? regauth check-config FILE");
  if (extra.length > 0) throw new UsageError(`unexpected argument ${extra[0]}`);
  try {
    const loaded = await loadConfigFile(file, { createFiles: false });
    process.stdout.write(
      `${file}: ok (${Object.keys(loaded.config.users ?? {}).length} users, ${loaded.acl.rules.length} ACL rules)\n`,
    );
    return 0;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stdout.write(`${error.message}\n`);
    return 1;
  }
}

async function hashPassword(args: ReturnType<typeof parseArgs>): Promise<number> {
  const costText = stringFlag(args, "cost") ?? "10";
  const cost = Number(costText);
  if (!Number.isInteger(cost) || cost < 4 || cost > 31)
    throw new UsageError("--cost must be an integer from 4 to 31");
  const input = await Bun.stdin.text();
  const password = input.replace(/\r?\n$/, "");
  if (password === "") {
    process.stderr.write("regauth hash-password: empty password on stdin\n");
    return 1;
  }
  process.stdout.write(`${await Bun.password.hash(password, { algorithm: "bcrypt", cost })}\n`);
  return 0;
}

async function registryConfig(args: ReturnType<typeof parseArgs>): Promise<number> {
  const loaded = await loadForCommand(args);
  // The data directory is whole from its first command on: keys and database together, so that
  // a later start can tell a lost database from a first run (src/db/data-dir.ts).
  openDatabase(databasePath(loaded.dataDir)).close();
  process.stdout.write(renderRegistryConfig(loaded));
  return 0;
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      log.error("fatal", { error: error instanceof Error ? error.message : String(error) });
      process.exit(1);
    },
  );
}
