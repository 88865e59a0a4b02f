/**
 * Every page of the web interface, in one list (the collision test in test/http/web-pages.test.ts
 * checks these paths against the token server's and the API's), the image index's
 * Repositories and the Webhooks (issue 11) included.
 */
import { ACCOUNT_ROUTES } from "./account-pages.ts";
import { ADMIN_ROUTES } from "./admin-pages.ts";
import { IDENTITY_ROUTES } from "./identity-pages.ts";
import type { PageRoute } from "./plugin.ts";
import { REPOSITORY_ROUTES } from "./repository-pages.ts";
import { SIGN_IN_ROUTES } from "./sign-in.ts";
import { WEBHOOK_ROUTES } from "./webhook-pages.ts";

export const PAGE_ROUTES: readonly PageRoute[] = [
  ...SIGN_IN_ROUTES,
  ...ACCOUNT_ROUTES,
  ...ADMIN_ROUTES,
  ...REPOSITORY_ROUTES,
  ...WEBHOOK_ROUTES,
  ...IDENTITY_ROUTES,
];
