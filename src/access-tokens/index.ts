/** Access tokens (issue 10 item 3): the folder's public surface. */
export * from "./access-tokens.ts";
export * from "./key.ts";
export * from "./scopes.ts";
export * from "./secret.ts";
