/**
 * Latency and failures of every back-end, measured around the chain's calls (src/server.ts)
 * instead of inside each one: LDAP, the hooks and the SQL back-ends need no metrics code. The
 * wrapper inherits from the original (Object.create), so its other fields and `instanceof` stay.
 */
import type { Authenticator } from "../authn/authenticator.ts";
import type { Authorizer } from "../authz/authorizer.ts";
import { metrics } from "./recorder.ts";

async function timed<T>(backend: string, call: () => Promise<T> | T): Promise<T> {
  const startedMs = performance.now();
  let failed = true;
  try {
    const result = await call();
    failed = false;
    return result;
  } finally {
    metrics.backendCall(backend, (performance.now() - startedMs) / 1000, failed);
  }
}

export function instrumentAuthenticator(original: Authenticator): Authenticator {
  const wrapped = Object.create(original) as Authenticator & { authenticate: Authenticator["authenticate"] };
  wrapped.authenticate = (credentials, context) =>
    timed(original.name, () => original.authenticate(credentials, context));
  return wrapped;
}

export function instrumentAuthorizer(original: Authorizer): Authorizer {
  const wrapped = Object.create(original) as Authorizer & {
    authorize: Authorizer["authorize"];
    forRequest?: Authorizer["forRequest"];
  };
  wrapped.authorize = (request, principal) =>
    timed(original.name, () => original.authorize(request, principal));
  if (original.forRequest) {
    const forRequest = original.forRequest.bind(original);
    wrapped.forRequest = () => instrumentAuthorizer(forRequest());
  }
  return wrapped;
}
