/**
 * `regauth identity link|unlink|list` (issue 15 item 3): an administrator's link between an
 * account and an identity at an OpenID provider, the only way such an identity signs in as an
 * account that exists already. Offline on the data directory (like `regauth admin`); the
 * provider's issuer comes from the config's identity_providers, so --config names it.
 */
import { AuditLog } from "../audit/audit-log.ts";
import { auditOptions } from "../audit/config-schema.ts";
import { findUser } from "../accounts/users.ts";
import { BadRequest, NotFound } from "../errors.ts";
import { deleteLink, linkIdentity, linksOfUser } from "../identity/links.ts";
import { expectArgs, nowUnix, openDataDirFromArgs } from "./accounts-database.ts";
import { type ParsedArgs, stringFlag, UsageError } from "./args.ts";

export const IDENTITY_USAGE = `regauth identity SUBCOMMAND [--data-dir DIR | --config FILE]

  link NAME --provider P --subject S   let the identity S at provider P sign in as the account NAME
  unlink NAME --provider P             remove that link (the account's sessions end too)
  list NAME                            the account's linked identities

P is a name from identity_providers (oidc or github) in the config; S is the provider's "sub" for
the person, for GitHub their numeric user id (the refusal page of their first sign-in shows it). Without a link, an identity at a provider
never signs in as an account that exists already, whatever its name. Works offline on the
database, also while regauth serve runs. Exit codes: 0 ok, 1 failed, 2 usage.`;

export const IDENTITY_VALUE_FLAGS = ["config", "data-dir", "provider", "subject"];

export async function identityCommand(args: ParsedArgs): Promise<number> {
  const sub = args.positionals[0];
  if (sub !== "link" && sub !== "unlink" && sub !== "list")
    throw new UsageError(
      sub === undefined
        ? "which subcommand? link, unlink or list"
        : `unknown subcommand ${JSON.stringify(sub)}`,
    );
  const [name] = expectArgs(args, ["NAME"]) as [string];
  const { db, loaded } = await openDataDirFromArgs(args, sub === "list" ? "read" : "write");
  const audit = new AuditLog(db, null, auditOptions(loaded.config.audit));
  try {
    if (sub === "list") {
      const user = findUser(db, name);
      if (!user) throw new NotFound(`no user ${JSON.stringify(name)}`);
      for (const link of linksOfUser(db, user.id))
        process.stdout.write(
          `${link.provider}\t${link.subject}\t${link.issuer}\tlinked by ${link.linkedBy}\n`,
        );
      return 0;
    }
    const providerName = stringFlag(args, "provider");
    if (providerName === undefined) throw new UsageError("--provider is required");
    const { oidc, github } = loaded.config.identity_providers;
    // GitHub's identities are issued by its web URL (src/identity/github.ts), the subject its numeric user id.
    const provider =
      oidc.find((p) => p.name === providerName) ??
      github
        .filter((p) => p.name === providerName)
        .map((p) => ({ name: p.name, issuer: p.web_url.replace(/\/+$/, "") }))[0];
    if (!provider)
      throw new BadRequest(
        `no provider ${JSON.stringify(providerName)} in identity_providers of ${loaded.source} (give --config FILE, the file serve runs with)`,
      );
    if (sub === "link") {
      const subject = stringFlag(args, "subject");
      if (subject === undefined) throw new UsageError("--subject is required");
      linkIdentity(db, {
        account: name,
        provider: provider.name,
        issuer: provider.issuer,
        subject,
        nowUnix: nowUnix(),
      });
      audit.recordNow({
        kind: "identity.linked",
        actor: "local-admin",
        ip: "",
        repository: null,
        outcome: "ok",
        details: { account: name, provider: provider.name, subject },
      });
      process.stdout.write(`linked ${name} to the ${provider.name} identity ${subject}\n`);
      return 0;
    }
    const user = findUser(db, name);
    if (!user || !deleteLink(db, user.id, provider.name))
      throw new NotFound(`${name} has no ${provider.name} identity linked`);
    // The sessions it opened end with it.
    db.query("UPDATE users SET credential_epoch = credential_epoch + 1 WHERE id = ?").run(user.id);
    audit.recordNow({
      kind: "identity.unlinked",
      actor: "local-admin",
      ip: "",
      repository: null,
      outcome: "ok",
      details: { account: name, provider: provider.name },
    });
    process.stdout.write(`unlinked ${name} from ${provider.name}\n`);
    return 0;
  } finally {
    db.close();
  }
}
