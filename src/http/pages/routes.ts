/**
 * Every page of the web interface, in one list (the collision test in test/http/web-pages.test.ts
 * checks these paths against the token server's and the API's). Later: /repositories and
 * /admin/webhooks (issue 11's image index and webhooks).
 */
import { ACCOUNT_ROUTES } from "./account-pages.ts";
import { ADMIN_ROUTES } from "./admin-pages.ts";
import { IDENTITY_ROUTES } from "./identity-pages.ts";
import type { PageRoute } from "./plugin.ts";
import { SIGN_IN_ROUTES } from "./sign-in.ts";

export const PAGE_ROUTES: readonly PageRoute[] = [
  ...SIGN_IN_ROUTES,
  ...ACCOUNT_ROUTES,
  ...ADMIN_ROUTES,
  ...IDENTITY_ROUTES,
];
