/**
 * The account rules' pure parts (src/identity/links.ts), table-driven: the name a claim
 * proposes, the labels claims give, the groups a claim lists, and labels read back from rows a
 * hand (or a bug) broke.
 */
import { describe, expect, it } from "bun:test";
import { Value } from "@sinclair/typebox/value";
import { databasePath, openDatabase } from "../../src/db/database.ts";
import { OidcProviderConfig } from "../../src/identity/config-schema.ts";
import {
  claimFacts,
  identityLabelsOf,
  labelsFromClaims,
  MAX_LABEL_VALUES,
  proposedName,
} from "../../src/identity/links.ts";
import { makeTempDir } from "../helpers.ts";

const config = (fields: Record<string, unknown> = {}) =>
  Value.Default(OidcProviderConfig, {
    name: "p",
    issuer: "https://i.example",
    client_id: "c",
    ...fields,
  }) as OidcProviderConfig;

describe("proposedName", () => {
  it.each([
    [{}, { preferred_username: "alice" }, "alice"],
    [{}, { preferred_username: 42 }, null],
    [{}, {}, null],
    [{ user_claim: "email" }, { email: "Bob.Smith@Example.com", email_verified: true }, "bob.smith"],
    [{ user_claim: "email" }, { email: "bob@example.com", email_verified: false }, null],
    [{ user_claim: "email" }, { email: "bob@example.com", email_verified: "true" }, null],
    [{ user_claim: "email" }, { email: "@example.com", email_verified: true }, null],
    [{ user_claim: "nickname" }, { nickname: "Not Lower" }, "Not Lower"],
  ])("%p with %p proposes %p", (fields, claims, expected) => {
    expect(proposedName(config(fields), claims)).toBe(expected);
  });
});

describe("labelsFromClaims and claimFacts", () => {
  it.each([
    [["groups"], { groups: ["a", "b", "a"] }, { groups: ["a", "b"] }],
    [["groups"], { groups: "solo" }, { groups: ["solo"] }],
    [["groups"], { groups: ["ok", 7, null, "", { x: 1 }] }, { groups: ["ok"] }],
    [["groups"], { groups: [] }, {}],
    [["groups", "roles"], { roles: ["r"] }, { roles: ["r"] }],
    [[], { groups: ["a"] }, {}],
  ])("labels_from_claims %p over %p give %p", (claims, given, expected) => {
    expect(labelsFromClaims(config({ labels_from_claims: claims }), given)).toEqual(expected);
  });

  it("caps a label at MAX_LABEL_VALUES values", () => {
    const many = Array.from({ length: 1000 }, (_, i) => `g${i}`);
    expect(
      labelsFromClaims(config({ labels_from_claims: ["groups"] }), { groups: many }).groups,
    ).toHaveLength(MAX_LABEL_VALUES);
  });

  it("reads groups from a list or a single string, never from other types", () => {
    expect(claimFacts(config(), { groups: ["a", 1] }).groups).toEqual(["a"]);
    expect(claimFacts(config(), { groups: "a" }).groups).toEqual(["a"]);
    expect(claimFacts(config(), { groups: { a: 1 } }).groups).toEqual([]);
  });
});

describe("identityLabelsOf", () => {
  it("merges the links' labels and skips rows that are not a JSON object", () => {
    const db = openDatabase(databasePath(makeTempDir("regauth-links-")));
    db.run("INSERT INTO users (id, name, password_hash, created_at_unix) VALUES (1, 'a', '!', 0)");
    const insert = db.query(
      "INSERT INTO identity_links (user_id, provider, issuer, subject, linked_by, created_at_unix, labels) VALUES (1, ?, ?, 's', 'admin', 0, ?)",
    );
    insert.run("p1", "i1", '{"groups":["a","b"]}');
    insert.run("p2", "i2", '{"groups":["b","c"],"teams":["t", 5]}');
    insert.run("p3", "i3", "not json");
    insert.run("p4", "i4", '["an","array"]');
    expect(identityLabelsOf(db, 1)).toEqual({ groups: ["a", "b", "c"], teams: ["t"] });
    expect(identityLabelsOf(db, 2)).toEqual({});
  });
});
