/**
 * `regauth key rotate` and `regauth key list` (issue 12, item 2): the signing key set of the data
 * directory (src/token/key-set.ts). Offline: they act on the files, and a running server notices
 * the change within a second (LiveKeySet).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { LoadedConfig } from "../config/load.ts";
import {
  BUNDLE_FILE,
  JWKS_FILE,
  loadKeySet,
  publishedAt,
  rotateKey,
  writePublishedFiles,
} from "../token/key-set.ts";
import { GENERATED_KEY_FILE } from "../token/keys.ts";
import { CommandFailed, type ParsedArgs, UsageError } from "./args.ts";
import type { CommandIo } from "./command-io.ts";

export const KEY_USAGE = `regauth key rotate [--config FILE] [--data-dir DIR]
regauth key list   [--config FILE] [--data-dir DIR]

rotate creates the next signing key and certificate in the data directory. It is published at
once (token-bundle.crt, jwks.json, /.well-known/jwks.json) and signs after
token.rotation_overlap_seconds (default 86400): restart every registry before then, so that it
re-reads its rootcertbundle. The replaced key stays published for token.expiration + 60 s after
that; restart the registries once more after it left, to stop trusting it.
list prints each key's kid, state (next, current, retired, expired) and times; it only reads.
Both fail when the data directory holds no key that regauth serve generated (nothing is created).
Keys named in the config (token.key, server.key) are rotated by hand: docs/deployment.md.`;

export async function keyCommand(
  args: ParsedArgs,
  io: CommandIo,
  /** `createFiles` false: validate only, create no data directory, key or database (list). */
  load: (args: ParsedArgs, createFiles: boolean) => Promise<LoadedConfig>,
): Promise<number> {
  const [sub, ...rest] = args.positionals;
  if (rest.length > 0) throw new UsageError(`unexpected argument ${rest[0]}`);
  if (sub !== "rotate" && sub !== "list") throw new UsageError("expected rotate or list");
  // Neither makes a data directory: run in the wrong directory, list would list a fresh
  // ./regauth-data's new key as if it were the installation's, and rotate would rotate it at once.
  // First a load that creates nothing, to see whether serve has generated a key here.
  const readOnly = await load(args, false);
  const generated = readOnly.keyPaths === null ? join(readOnly.dataDir, GENERATED_KEY_FILE) : null;
  if (generated !== null && !existsSync(generated))
    throw new CommandFailed(
      `no signing key in ${readOnly.dataDir} (${existsSync(readOnly.dataDir) ? `no ${GENERATED_KEY_FILE}` : "no such directory"}): regauth key ${sub} works on the data directory of --data-dir DIR, else data_dir of --config FILE, else $STATE_DIRECTORY, else ./regauth-data, once regauth serve has generated its key there. Point it at the one regauth serve uses, e.g. --config /etc/regauth/config.yml --data-dir /var/lib/regauth`,
    );
  // rotate writes: the full load, with the data directory's checks (owner, modes, database).
  const loaded = sub === "rotate" ? await load(args, true) : readOnly;
  const { dataDir } = loaded;
  const { token } = loaded.config;
  const options = {
    useThumbprintKid: token.disable_legacy_key_id,
    maxTokenLifetimeSeconds: token.expiration,
  };
  const nowSeconds = Math.floor(io.nowMs() / 1000);
  if (generated === null && !loaded.keyPaths?.inDataDir) {
    if (sub === "list") {
      const key = loaded.signingKey;
      io.out(`KID\tSTATE\n${key?.kid ?? "-"}\tcurrent (${loaded.keyPaths?.keyPath ?? "configured"})\n`);
      return 0;
    }
    throw new CommandFailed(
      `the signing key is named in the config (${loaded.keyPaths?.keyPath}); regauth rotates only the key it generated. Rotate by hand (docs/deployment.md, "Rotating the signing key"): add the new certificate to every registry's rootcertbundle and restart them, then point token.key/token.certificate at the new pair and reload regauth, and remove the old certificate after token.expiration + 60 s`,
    );
  }
  if (sub === "rotate") {
    let entry: ReturnType<typeof rotateKey>;
    try {
      entry = rotateKey(dataDir, nowSeconds, token.rotation_overlap_seconds, token.expiration);
    } catch (error) {
      throw new CommandFailed(error instanceof Error ? error.message : String(error));
    }
    const set = await loadKeySet(dataDir, nowSeconds, options);
    writePublishedFiles(dataDir, publishedAt(set, nowSeconds));
    const created = set.keys.find((k) => k.timeline.entry.id === entry.id);
    io.out(
      [
        `Created ${join(dataDir, `${entry.id}.key`)} (kid ${created?.key.kid}).`,
        `It signs from ${iso(entry.activatesAtSeconds)} (token.rotation_overlap_seconds ${token.rotation_overlap_seconds}).`,
        `Published in ${join(dataDir, BUNDLE_FILE)} and ${join(dataDir, JWKS_FILE)}.`,
        "Restart every registry before then, so that it trusts the new key (it reads rootcertbundle/jwks only at start).",
        "",
      ].join("\n"),
    );
    return 0;
  }
  const set = await loadKeySet(dataDir, nowSeconds, { ...options, includeExpired: true });
  const rows = set.keys.map(({ timeline: t, key }) => [
    key.kid,
    t.state,
    t.entry.id,
    iso(t.entry.createdAtSeconds),
    t.entry.activatesAtSeconds === 0 ? "-" : iso(t.entry.activatesAtSeconds),
    t.retiresAtSeconds === null ? "-" : iso(t.retiresAtSeconds),
    t.leavesSetAtSeconds === null ? "-" : iso(t.leavesSetAtSeconds),
  ]);
  io.out(
    `${[["KID", "STATE", "FILE", "CREATED", "ACTIVATES", "RETIRES", "UNPUBLISHED"], ...rows].map((r) => r.join("\t")).join("\n")}\n`,
  );
  return 0;
}

function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.000Z$/, "Z");
}
