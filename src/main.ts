/**
 * regauth's command line. Each command parses its arguments, calls into the domain, and maps
 * failures to exit codes: 0 ok, 1 failed, 2 usage error.
 */
import { resolve } from "node:path";
import pkg from "../package.json" with { type: "json" };
// Only light modules load statically: `--version` and `--help` load no command, and each command
// loads what it uses when it runs (COMMANDS' load, and `await import` in the commands below), so
// a CLI command never loads Elysia, LDAP or the token server (issue 12 item 6; `bun run bench`).
import { CommandFailed, parseArgs, stringFlag, UsageError } from "./cli/args.ts";
import type { CommandIo } from "./cli/command-io.ts";
import type { LoadedConfig } from "./config/load.ts";
import type { Reloader } from "./reload/reload-config.ts";
import { DatabaseError } from "./db/database-error.ts";
import { AppError, ConfigError } from "./errors.ts";
import { log } from "./log.ts";

declare const REGAUTH_VERSION: string | undefined;
export const VERSION = typeof REGAUTH_VERSION === "string" ? REGAUTH_VERSION : `${pkg.version}-dev`;

interface Command {
  summary: string;
  /** What the command needs to parse and run, loaded only when it is used. */
  load(): Promise<CommandSpec>;
}

interface CommandSpec {
  usage: string;
  valueFlags: string[];
  booleanFlags: string[];
  run(args: ReturnType<typeof parseArgs>, io: CommandIo): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  serve: {
    summary: "run the token server",
    load: async () => ({
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
admin, or a new key pair that every registry must then be given).

server.workers processes serve the port (default: the CPUs regauth may use); this one is the
supervisor: SIGHUP and SIGTERM go to it, and it passes them on (README "Workers").`,
      valueFlags: ["config", "data-dir", "addr"],
      booleanFlags: ["reinitialize"],
      run: serve,
    }),
  },
  "check-config": {
    summary: "validate a config file; print every problem with its key path",
    load: async () => ({
      usage:
        "regauth check-config FILE | --config FILE\n\nExits 0 when the file is valid, 1 when it is not. It creates nothing: no data\ndirectory, key or database.",
      valueFlags: ["config"],
      booleanFlags: [],
      run: checkConfig,
    }),
  },
  "hash-password": {
    summary: "read a password on stdin, print its bcrypt hash for the users section",
    load: async () => ({
      usage:
        "regauth hash-password [--cost N] < password.txt\n\nOne trailing newline is removed. Default cost 10.",
      valueFlags: ["cost"],
      booleanFlags: [],
      run: hashPassword,
    }),
  },
  "registry-config": {
    summary: "print the auth and notifications blocks for the registry's config.yml",
    load: async () => ({
      usage: `regauth registry-config [--config FILE] [--data-dir DIR] [--addr HOST:PORT]

Give it the flags serve runs with (serve logs the exact command on every start).`,
      valueFlags: ["config", "data-dir", "addr"],
      booleanFlags: [],
      run: registryConfig,
    }),
  },
  user: {
    summary: "manage users (add, list, show, passwd, disable, enable, promote, demote, rm, release)",
    load: async () => {
      const m = await import("./cli/user.ts");
      const backend = await import("./cli/backend.ts");
      return {
        usage: m.USER_USAGE,
        valueFlags: [...backend.CLIENT_VALUE_FLAGS, ...m.USER_VALUE_FLAGS],
        booleanFlags: [...backend.CLIENT_BOOLEAN_FLAGS, ...m.USER_BOOLEAN_FLAGS],
        run: m.userCommand,
      };
    },
  },
  perm: {
    summary: "grant, revoke and list read/write/admin permissions",
    load: async () => {
      const m = await import("./cli/perm.ts");
      const backend = await import("./cli/backend.ts");
      return {
        usage: m.PERM_USAGE,
        valueFlags: [...backend.CLIENT_VALUE_FLAGS, ...m.PERM_VALUE_FLAGS],
        booleanFlags: backend.CLIENT_BOOLEAN_FLAGS,
        run: m.permCommand,
      };
    },
  },
  group: {
    summary: "manage groups of users (create, delete, add-member, remove-member, list, show)",
    load: async () => {
      const m = await import("./cli/perm.ts");
      const backend = await import("./cli/backend.ts");
      return {
        usage: m.GROUP_USAGE,
        valueFlags: backend.CLIENT_VALUE_FLAGS,
        booleanFlags: backend.CLIENT_BOOLEAN_FLAGS,
        run: m.groupCommand,
      };
    },
  },
  token: {
    summary: "access tokens for docker login and CI (create, list, revoke)",
    load: async () => {
      const m = await import("./cli/token.ts");
      const backend = await import("./cli/backend.ts");
      return {
        usage: m.TOKEN_USAGE,
        valueFlags: [...backend.CLIENT_VALUE_FLAGS, ...m.TOKEN_VALUE_FLAGS],
        booleanFlags: backend.CLIENT_BOOLEAN_FLAGS,
        run: m.tokenCommand,
      };
    },
  },
  robot: {
    summary: "robot accounts for CI, with tokens as their only credentials (create, list, rm, token)",
    load: async () => {
      const m = await import("./cli/token.ts");
      const backend = await import("./cli/backend.ts");
      return {
        usage: m.ROBOT_USAGE,
        valueFlags: [...backend.CLIENT_VALUE_FLAGS, ...m.TOKEN_VALUE_FLAGS],
        booleanFlags: backend.CLIENT_BOOLEAN_FLAGS,
        run: m.robotCommand,
      };
    },
  },
  audit: {
    summary: "query the audit log (--since, --actor, --repository, --kind, --follow)",
    load: async () => {
      const m = await import("./cli/audit.ts");
      const backend = await import("./cli/backend.ts");
      return {
        usage: m.AUDIT_USAGE,
        valueFlags: [...backend.CLIENT_VALUE_FLAGS, ...m.AUDIT_VALUE_FLAGS],
        booleanFlags: [...backend.CLIENT_BOOLEAN_FLAGS, ...m.AUDIT_BOOLEAN_FLAGS],
        run: m.auditCommand,
      };
    },
  },
  webhook: {
    summary:
      "outgoing webhooks for pushes (add, list, show, rm, enable, disable, test, deliveries, redeliver)",
    load: async () => {
      const m = await import("./cli/webhook.ts");
      const backend = await import("./cli/backend.ts");
      return {
        usage: m.WEBHOOK_USAGE,
        valueFlags: [...backend.CLIENT_VALUE_FLAGS, ...m.WEBHOOK_VALUE_FLAGS],
        booleanFlags: [...backend.CLIENT_BOOLEAN_FLAGS, ...m.WEBHOOK_BOOLEAN_FLAGS],
        run: m.webhookCommand,
      };
    },
  },
  repo: {
    summary: "the image index: repositories you may pull (list, tags, show) and sync with the registry",
    load: async () => {
      const m = await import("./cli/repo.ts");
      const backend = await import("./cli/backend.ts");
      return {
        usage: m.REPO_USAGE,
        valueFlags: [...backend.CLIENT_VALUE_FLAGS, ...m.REPO_VALUE_FLAGS],
        booleanFlags: backend.CLIENT_BOOLEAN_FLAGS,
        run: m.repoCommand,
      };
    },
  },
  login: {
    summary: "log in to a regauth server; the management commands then act there",
    load: async () => {
      const m = await import("./cli/login.ts");
      return {
        usage: m.LOGIN_USAGE,
        valueFlags: m.LOGIN_VALUE_FLAGS,
        booleanFlags: m.LOGIN_BOOLEAN_FLAGS,
        run: m.loginCommand,
      };
    },
  },
  logout: {
    summary: "revoke the token of regauth login and forget it",
    load: async () => {
      const m = await import("./cli/login.ts");
      return { usage: m.LOGOUT_USAGE, valueFlags: [], booleanFlags: [], run: m.logoutCommand };
    },
  },
  key: {
    summary: "rotate and list the token signing keys of the data directory",
    load: async () => {
      const { KEY_USAGE, keyCommand } = await import("./cli/key.ts");
      return {
        usage: KEY_USAGE,
        valueFlags: ["config", "data-dir"],
        booleanFlags: [],
        run: (args, io) =>
          keyCommand(args, io, async (a, createFiles) => {
            const loaded = await loadForCommand(a, createFiles);
            if (!createFiles) return loaded;
            // As registry-config: keys and database together, so a later start sees a whole data directory.
            const { databasePath, openDatabase } = await import("./db/database.ts");
            openDatabase(databasePath(loaded.dataDir)).close();
            return loaded;
          }),
      };
    },
  },
  backup: {
    summary: "copy the data directory (database and keys) into a new directory, while serving",
    load: async () => {
      const { BACKUP_USAGE, BACKUP_VALUE_FLAGS, backupCommand } = await import("./cli/backup.ts");
      return {
        usage: BACKUP_USAGE,
        valueFlags: BACKUP_VALUE_FLAGS,
        booleanFlags: [],
        run: (args) => backupCommand(args, (parsed) => loadForCommand(parsed, false)),
      };
    },
  },
  admin: {
    summary: "reset-password: a new password for the admin user, offline",
    load: async () => {
      const m = await import("./cli/admin.ts");
      const { DATABASE_FLAGS } = await import("./cli/accounts-database.ts");
      return { usage: m.ADMIN_USAGE, valueFlags: DATABASE_FLAGS, booleanFlags: [], run: m.adminCommand };
    },
  },
};

// Identity providers (issue 15): an administrator's links between accounts and provider identities.
COMMANDS.identity = {
  summary: "link accounts to identities at OpenID providers (link, unlink, list)",
  load: async () => {
    const m = await import("./cli/identity.ts");
    return {
      usage: m.IDENTITY_USAGE,
      valueFlags: m.IDENTITY_VALUE_FLAGS,
      booleanFlags: [],
      run: m.identityCommand,
    };
  },
};

const COMMANDS_WITH_SUBCOMMANDS = new Set(["user", "perm", "group", "token", "robot", "admin", "key"]);
COMMANDS_WITH_SUBCOMMANDS.add("identity");
COMMANDS_WITH_SUBCOMMANDS.add("webhook");
COMMANDS_WITH_SUBCOMMANDS.add("repo");

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

/**
 * The real terminal (src/cli/backend.ts processIo). The back-ends and the password prompt load when
 * a command first asks for them: serve and check-config never do (8 MiB and ~10 ms here).
 */
function processIo(): CommandIo {
  const terminal = () => import("./cli/backend.ts").then((backend) => backend.processIo());
  return {
    client: async (args) => (await terminal()).client(args),
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    readSecrets: async (args, requests) => (await terminal()).readSecrets(args, requests),
    nowMs: () => Date.now(),
    sleep: (ms) => Bun.sleep(ms),
  };
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
  const entry = COMMANDS[name];
  if (!entry) {
    io.err(`regauth: unknown command ${JSON.stringify(name)}\n\n${mainUsage()}`);
    return 2;
  }
  const command = await entry.load();
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
      // Only serve listens; it has loaded the server module by the time it throws.
      (name === "serve" && error instanceof (await import("./server.ts")).ListenError) ||
      (error instanceof AppError && error.status < 500)
    ) {
      io.err(`regauth ${name}${sub}: ${error.message}\n`);
      return 1;
    }
    const { openedDatabasePath } = await import("./cli/accounts-database.ts");
    const { describeStoreError } = await import("./db/store-errors.ts");
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
  const { EMBEDDED_DEFAULT_SOURCE, embeddedDefaultConfig, loadConfigFile, prepareConfig } = await import(
    "./config/load.ts"
  );
  const configPath = stringFlag(args, "config");
  const options = {
    dataDir: reloadInto ?? stringFlag(args, "data-dir"),
    createFiles,
    addr: await listenAddressOverride(args),
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
async function listenAddressOverride(args: ReturnType<typeof parseArgs>): Promise<string | undefined> {
  const { parseListenAddress } = await import("./config/load.ts");
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
async function registryConfigCommand(
  args: ReturnType<typeof parseArgs>,
  loaded: LoadedConfig,
): Promise<string> {
  const { EMBEDDED_DEFAULT_SOURCE } = await import("./config/load.ts");
  const words = ["regauth", "registry-config"];
  if (loaded.source !== EMBEDDED_DEFAULT_SOURCE) words.push("--config", resolve(loaded.source));
  // Always the data directory: outside the service $STATE_DIRECTORY is unset (docs/deployment.md).
  words.push("--data-dir", loaded.dataDir);
  const addr = await listenAddressOverride(args);
  if (addr !== undefined) words.push("--addr", addr);
  return words
    .map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`))
    .join(" ");
}

async function serve(args: ReturnType<typeof parseArgs>): Promise<number> {
  if (args.positionals.length > 0)
    throw new UsageError(`unexpected argument ${args.positionals[0]}; the config file goes after --config`);
  const {
    buildApiApp,
    buildApp,
    buildIssuer,
    checkCanListen,
    closeIssuer,
    keptAcrossReload,
    listen,
    managementServices,
    registryEventsOptions,
  } = await import("./server.ts");
  const { CurrentIssuer } = await import("./reload/current-issuer.ts");
  const { reloadConfig } = await import("./reload/reload-config.ts");
  const { startMetricsExporter } = await import("./metrics/exporter.ts");
  const { adminPasswordBanner } = await import("./accounts/bootstrap.ts");
  const { PasswordVerifier } = await import("./authn/password-verifier.ts");
  const { backgroundWriterFor } = await import("./db/background-writer.ts");
  const { renderRegistryConfig } = await import("./registry-config.ts");
  // server.workers (issue 17, src/serve/): a worker started by a supervisor serves the port with
  // it and leaves the first run, the banner and the background jobs to it.
  const workers = await import("./serve/workers-in-serve.ts");
  const worker = await workers.joinIfWorker();
  if (worker) return serveAsWorker(args, worker);
  const { HeapBudget, QuietRelease } = await import("./ops/heap-budget.ts");
  // Validate and check the listen address before creating anything: a broken config or a taken
  // port must not leave a fresh data directory, key and database behind (issue 12).
  const validated = await validateQuietly(args);
  const portLock = workers.lockListenAddress(validated.config.server);
  checkCanListen(validated.config.server);
  // Before anything is created too: an unreadable bearer_token_file is a config error (and the
  // one import of prom-client, when metrics are on).
  const metricsExporter = await startMetricsExporter(validated.config.metrics, validated.source);
  // HTTPS from an ACME CA (issue 16): the certificate comes first, before anything is created or
  // listened on; without one serve stops here, and never serves plain HTTP instead.
  const acme = validated.config.server.letsencrypt ? await startAcmeFor(validated) : null;
  const loaded = await loadForCommand(args);
  const signingKey = loaded.signingKey;
  if (!signingKey) throw new Error("no signing key"); // createFiles=true always resolves one
  const { database, bootstrap } = await openAndBootstrap(loaded);
  const workerCount = workers.workerCount(loaded.config);
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
  const verifier = new PasswordVerifier(workers.verifierOptions(workerCount));
  const issuer = buildIssuer(loaded, signingKey, verifier, database);
  // Retention by age and count, on the background writer's thread: at start, then every 10 minutes.
  issuer.audit?.log.startPruning();
  const services = managementServices(loaded, issuer, database);
  // Outgoing webhooks (issue 11): the dispatcher delivers what the index's sink queued.
  if (loaded.config.webhooks.enabled && loaded.config.notifications.enabled)
    services.webhooks.dispatcher.start();
  // The registry's notifications (issue 11), null when off; forgotten event ids pruned hourly.
  // Each applied event's changes are queued for the webhooks in the same transaction.
  const registryEvents = registryEventsOptions(loaded, database, services.audit, services.webhooks.sink);
  registryEvents?.receiver.startPruning();
  // Requests go through `current`, which SIGHUP swaps for the issuer of the re-read config.
  const current = new CurrentIssuer(issuer);
  const running = listen(
    loaded,
    buildApp(loaded, current, services, metricsExporter, registryEvents),
    buildApiApp(loaded, current, services),
    acme?.current(),
    { reusePort: workerCount > 1 },
  );
  acme?.startRenewing(async (next) => running.replaceCertificate?.(next));
  // The other workers, once this one serves the port (src/serve/supervisor.ts).
  // The config every worker must serve: the supervisor's, as of its last reload (issue 17 review).
  let servedConfig = workers.configFingerprint(loaded);
  const pool = workers.startPool(
    workerCount,
    loaded.dataDir,
    () => current.issuer.throttle,
    () => servedConfig,
  );
  // Full collections before the heap overshoots under a flood of failed logins (issue 9 item 6),
  // and memory handed back once a burst is over (issue 12 item 6).
  new HeapBudget().start();
  new QuietRelease().start();
  // The stop signals are handled from the moment the port is open: a SIGTERM that comes while the
  // rest of start-up still runs must close the database cleanly too (its -wal and -shm go away),
  // not kill the process with them left behind.
  let stopReloading = () => {};
  // The crawl that heals the image index (issue 11), every notifications.sync_interval_seconds.
  let stopSyncing = async () => services.indexSync?.stop();
  const stopped = new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      log.info("shutting down", { signal });
      acme?.stop();
      stopReloading();
      registryEvents?.receiver.stopPruning();
      // The pool stops at once: workers get the same SIGTERM from systemd, and one that exits
      // while a crawl is still stopping must not be restarted.
      const poolStopped = pool?.stop();
      void stopSyncing()
        .then(() => Promise.all([running.stop(), poolStopped]))
        .finally(() => portLock.release())
        .finally(() => services.webhooks.dispatcher.stop())
        .finally(() => backgroundWriterFor(database).close())
        .finally(() => database.close())
        .finally(resolve);
    };
    process.once("SIGTERM", () => shutdown("SIGTERM"));
    process.once("SIGINT", () => shutdown("SIGINT"));
  });
  // The web interface is where the API is: on its own listener with api.addr, off without the API.
  const webBase = running.apiUrl ?? running.url;
  const webUrl =
    loaded.config.web.enabled && loaded.config.api.enabled && !webBase.startsWith("unix:")
      ? `${webBase}${loaded.config.server.path_prefix}/`
      : null;
  // Right under the first-run banner: before the registry block, which scripts parse to the end.
  if (bootstrap.kind === "created" && webUrl !== null)
    process.stdout.write(
      `\nOpen ${webUrl} and sign in as ${bootstrap.credentials.name} with the password above.\n`,
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
    ...(workerCount > 1 ? { workers: workerCount } : {}),
  });
  log.info("to print the registry's auth block, run", { command: await registryConfigCommand(args, loaded) });
  if (registryEvents)
    log.info("receiving the registry's notifications", {
      url: `${running.url}${loaded.config.server.path_prefix}/registry/events`,
    });
  // The web interface (docs/web.md): where to open it.
  if (webUrl !== null) log.info("web interface", { url: webUrl });
  else if (loaded.config.web.enabled && !loaded.config.api.enabled)
    log.info("web interface off", {
      reason: "api.enabled is false; the web interface manages what the API does",
    });
  // One reload at a time, in the order the signals came (systemctl reload, kill -HUP).
  let serving = loaded;
  const reloader = issuerReloader(
    { buildIssuer, closeIssuer, keptAcrossReload },
    args,
    loaded.dataDir,
    current,
    verifier,
    database,
    () => serving,
  );
  let reloads = Promise.resolve();
  const onReloadSignal = () => {
    log.info("reloading the config", { signal: "SIGHUP", config: serving.source });
    reloads = reloads.then(async () => {
      // The workers first: once this logs the outcome, every process serves it (issue 17).
      const inWorkers = (await pool?.reload()) ?? [];
      const before = serving;
      serving = await reloadConfig(serving, reloader);
      servedConfig = workers.configFingerprint(serving);
      workers.logDisagreements(inWorkers, serving !== before);
      pool?.restart(workers.workersServingOtherConfig(inWorkers, servedConfig));
    });
  };
  process.on("SIGHUP", onReloadSignal);
  stopReloading = () => process.off("SIGHUP", onReloadSignal);
  const syncIntervalSeconds = loaded.config.notifications.sync_interval_seconds;
  if (services.indexSync && syncIntervalSeconds > 0) {
    const { startPeriodicSync } = await import("./registry-index/sync.ts");
    stopSyncing = startPeriodicSync(services.indexSync, syncIntervalSeconds);
  }
  // Identity re-checks (issue 15): at each provider's revalidate_after_seconds.
  services.identity?.startRevalidating(database, services.audit);
  // Start-up is over: from here the JIT tiers up as usual. The executable starts with its
  // thresholds scaled (scripts/build.ts, --compile-jit-policy), so that code run once at start
  // stays in the interpreter instead of being compiled for nothing (issue 12 item 6).
  Bun.unsafe.setJITPolicy(1);
  await stopped;
  return 0;
}

/**
 * The ACME certificate for server.letsencrypt (issue 16, docs/https-acme.md), kept in cache_dir
 * (default: the data directory). A CommandFailed saying why when there is none.
 */
async function startAcmeFor(validated: LoadedConfig) {
  const section = validated.config.server.letsencrypt;
  if (!section) throw new Error("no server.letsencrypt"); // the caller checked
  const { AcmeError, startAcme } = await import("./acme/manager.ts");
  const { listenForHttpChallenges } = await import("./http/acme-challenge.ts");
  const { realmUrl } = await import("./registry-config.ts");
  const httpsUrl = realmUrl(validated).replace(/\/auth$/, "/");
  try {
    return await startAcme({
      section,
      cacheDir: resolve(section.cache_dir ?? validated.dataDir),
      openHttpChallenge: (answers) => listenForHttpChallenges(section.http_challenge_addr, httpsUrl, answers),
    });
  } catch (error) {
    if (error instanceof AcmeError) throw new CommandFailed(error.message);
    throw error;
  }
}

/**
 * How serve and each of its workers rebuild the issuer from a re-read config (SIGHUP,
 * src/reload/reload-config.ts). The data directory's live key set follows `regauth key rotate` on
 * its own timer and writes the published bundle and JWKS: one of it, given the re-read keys once
 * the rest is built.
 */
function issuerReloader(
  server: Pick<typeof import("./server.ts"), "buildIssuer" | "closeIssuer" | "keptAcrossReload">,
  args: ReturnType<typeof parseArgs>,
  dataDir: string,
  current: import("./reload/current-issuer.ts").CurrentIssuer,
  verifier: import("./authn/password-verifier.ts").PasswordVerifier,
  database: import("bun:sqlite").Database,
  serving: () => LoadedConfig,
): Reloader {
  return {
    load: () => loadForCommand(args, true, dataDir),
    build: (next) => {
      if (!next.signingKey) throw new Error("no signing key"); // createFiles=true always resolves one
      const liveKeys = current.issuer.keySet;
      const keepKeys =
        liveKeys !== undefined &&
        next.keySet !== null &&
        Boolean(next.keyPaths?.inDataDir) === Boolean(serving().keyPaths?.inDataDir);
      const issuer = server.buildIssuer(next, next.signingKey, verifier, database, {
        ...server.keptAcrossReload(current.issuer),
        ...(keepKeys ? { keySet: liveKeys } : {}),
      });
      if (keepKeys && next.keySet) liveKeys.replace(next.keySet);
      return issuer;
    },
    close: server.closeIssuer,
    current,
  };
}

/**
 * One of the supervisor's workers (issue 17, src/serve/supervisor.ts): the same token server on the
 * same port, without what must happen once per server: the first-run admin and banner, the
 * management API's own listener (api.addr), the background jobs (audit pruning, webhook delivery,
 * pruning of notification ids, index sync, identity re-checks). Its login throttle is the
 * supervisor's. Quiet at start: the supervisor has logged the config's warnings once.
 */
async function serveAsWorker(
  args: ReturnType<typeof parseArgs>,
  worker: import("./serve/worker.ts").WorkerLink,
): Promise<number> {
  const {
    buildApp,
    buildIssuer,
    closeIssuer,
    keptAcrossReload,
    listen,
    managementServices,
    registryEventsOptions,
  } = await import("./server.ts");
  const { CurrentIssuer } = await import("./reload/current-issuer.ts");
  const { reloadConfig } = await import("./reload/reload-config.ts");
  const { startMetricsExporter } = await import("./metrics/exporter.ts");
  const { PasswordVerifier } = await import("./authn/password-verifier.ts");
  const { backgroundWriterFor } = await import("./db/background-writer.ts");
  const { databasePath, openDatabase, REQUEST_PATH_BUSY_TIMEOUT_MS } = await import("./db/database.ts");
  const { configFingerprint, verifierOptions } = await import("./serve/workers-in-serve.ts");
  const lines: string[] = [];
  const restore = log.capture(lines);
  let loaded: LoadedConfig;
  try {
    loaded = await loadForCommand(args, true, worker.dataDir);
    // Not another config than the server serves (an edit nobody reloaded, a key that needs a
    // restart): this worker exits and is started again, with backoff, until they are one.
    if (configFingerprint(loaded) !== worker.config)
      throw new CommandFailed(
        `worker ${worker.id}: the config file differs from the config this server serves (edited since the last reload, or a key changed that needs a restart); this worker starts once they agree`,
      );
  } catch (error) {
    restore();
    for (const line of lines) process.stderr.write(`${line}\n`);
    throw error;
  }
  try {
    const signingKey = loaded.signingKey;
    if (!signingKey) throw new Error("no signing key"); // createFiles=true always resolves one
    const metricsExporter = await startMetricsExporter(loaded.config.metrics, loaded.source);
    const database = openDatabase(databasePath(loaded.dataDir));
    const verifier = new PasswordVerifier(verifierOptions(worker.workers));
    const issuer = buildIssuer(loaded, signingKey, verifier, database, { throttle: worker.throttle });
    const services = managementServices(loaded, issuer, database);
    const registryEvents = registryEventsOptions(loaded, database, services.audit, services.webhooks.sink);
    // Start-up's writes (the declared webhooks' sync) wait as long as start-up does
    // (src/db/database.ts); from here the request path's short wait.
    database.run(`PRAGMA busy_timeout = ${REQUEST_PATH_BUSY_TIMEOUT_MS}`);
    const current = new CurrentIssuer(issuer);
    const running = listen(
      loaded,
      buildApp(loaded, current, services, metricsExporter, registryEvents),
      null,
      undefined,
      {
        reusePort: true,
      },
    );
    // As in the supervisor: full collections before the heap overshoots under a flood (issue 9 item 6).
    const { HeapBudget, QuietRelease } = await import("./ops/heap-budget.ts");
    new HeapBudget().start();
    new QuietRelease().start();
    restore();
    let serving = loaded;
    const reloader = issuerReloader(
      { buildIssuer, closeIssuer, keptAcrossReload },
      args,
      loaded.dataDir,
      current,
      verifier,
      database,
      () => serving,
    );
    worker.onReload(async () => {
      const before = serving;
      serving = await reloadConfig(serving, reloader);
      return { isApplied: serving !== before, config: configFingerprint(serving) };
    });
    // SIGHUP is the supervisor's (it asks its workers over IPC): a `pkill -HUP` must not kill a worker.
    const onReloadSignal = () => {};
    process.on("SIGHUP", onReloadSignal);
    await new Promise<void>((resolve) => {
      let isStopping = false;
      const shutdown = () => {
        if (isStopping) return;
        isStopping = true;
        process.off("SIGHUP", onReloadSignal);
        void running
          .stop()
          .finally(() => backgroundWriterFor(database).close())
          .finally(() => database.close())
          .finally(resolve);
      };
      // `on`, not `once`: systemd signals the whole cgroup, then the supervisor signals again.
      process.on("SIGTERM", shutdown);
      // Ctrl-C reaches the whole process group: the supervisor stops its workers in order.
      process.on("SIGINT", () => {});
      worker.onSupervisorGone(shutdown);
      worker.ready();
      // As in the supervisor: start-up is over, the JIT tiers up as usual (scripts/build.ts).
      Bun.unsafe.setJITPolicy(1);
    });
    return 0;
  } catch (error) {
    restore();
    for (const line of lines) process.stderr.write(`${line}\n`);
    throw error;
  }
}

/**
 * Opens the database and makes sure it has an administrator. When this start is a first run and
 * fails here (a full disk), the files it created are removed again, so that the next start is a
 * first run too instead of "the database is missing next to token.key" (issue 9, item 3).
 */
async function openAndBootstrap(loaded: LoadedConfig) {
  const { rmSync } = await import("node:fs");
  const { ensureAdmin } = await import("./accounts/bootstrap.ts");
  const { databasePath, openDatabase, REQUEST_PATH_BUSY_TIMEOUT_MS } = await import("./db/database.ts");
  const { describeStoreError } = await import("./db/store-errors.ts");
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
  const [positional, ...extra] = args.positionals;
  const flag = stringFlag(args, "config");
  if (flag !== undefined && positional !== undefined)
    throw new UsageError("give the file once: regauth check-config FILE or --config FILE, not both");
  const file = flag ?? positional;
  if (file === undefined) throw new UsageError("which file? regauth check-config FILE (or --config FILE)");
  if (extra.length > 0) throw new UsageError(`unexpected argument ${extra[0]}`);
  const { loadConfigFile } = await import("./config/load.ts");
  try {
    const loaded = await loadConfigFile(file, { createFiles: false, checkFilesServeReads: true });
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
  const { databasePath, openDatabase } = await import("./db/database.ts");
  const { renderRegistryConfig } = await import("./registry-config.ts");
  // The data directory is whole from its first command on: keys and database together, so that
  // a later start can tell a lost database from a first run (src/db/data-dir.ts).
  openDatabase(databasePath(loaded.dataDir)).close();
  // The notifications block carries the secret (created here on first use, as the keys are).
  const { notifications } = loaded.config;
  let notificationSecret: string | null = null;
  if (notifications.enabled) {
    const { loadNotificationSecret } = await import("./registry-index/secret.ts");
    notificationSecret = loadNotificationSecret({
      dataDir: loaded.dataDir,
      source: loaded.source,
      secretFile: notifications.secret_file,
    });
  }
  process.stdout.write(renderRegistryConfig(loaded, { notificationSecret }));
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
