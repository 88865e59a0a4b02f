/**
 * distribution's notification envelope (protocol_and_peers.md §C.2, §C.3; distribution
 * notifications/event.go), parsed into what the image index does with each event.
 *
 * Tolerant where the registry grows: unknown fields anywhere in an event are ignored (2.8 sends
 * `length`, 3.x embeds an OCI descriptor with `urls`, `annotations`, `artifactType`, ...), and so
 * are unknown actions. Strict where we use a value: a field of the wrong type, a repository name
 * outside distribution's grammar, an impossible tag or digest refuse the whole envelope (400),
 * before anything is applied. An empty string is an absent field: 3.x's OCI descriptor has no
 * `omitempty`, so its delete events carry `"mediaType": "", "digest": "", "size": 0`.
 */
import { type Static, Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { isResourceName } from "../scope.ts";

/** 2.8's envelope media type; 3.x sends `...events.v2+json` (distribution 0742b56); some proxies send plain JSON. */
export const EVENTS_MEDIA_TYPES = [
  "application/vnd.docker.distribution.events.v1+json",
  "application/vnd.docker.distribution.events.v2+json",
  "application/json",
] as const;

/** The registry sends one event per request (notifications/http.go); the format allows more. */
export const MAX_EVENTS_PER_ENVELOPE = 1000;

/**
 * Manifests and indexes: what a tag can point at. OCI ones included (Portus matched
 * `application/vnd.docker.distribution.manifest` only and lost every OCI image, §C.4), and the
 * short-lived OCI artifact manifest, which some registries and oras accepted. Anything else
 * (application/octet-stream for blobs, layer types) is a blob event: not indexed.
 */
export const MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set([
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.artifact.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  // schema1, which 2.8 still serves (3.x removed it).
  "application/vnd.docker.distribution.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v1+prettyjws",
]);

/** OCI distribution spec: a tag is at most 128 characters of this grammar. */
const TAG = /^[\w][\w.-]{0,127}$/;
/** OCI image spec descriptor digest grammar (algorithm:encoded), bounded. */
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const MAX_DIGEST_LENGTH = 256;

const text = (maxLength: number) => Type.String({ maxLength });

// Objects are open (additionalProperties allowed): the registry adds fields across versions.
const Target = Type.Object({
  mediaType: Type.Optional(text(256)),
  digest: Type.Optional(text(MAX_DIGEST_LENGTH)),
  // Go's int64 fits; beyond 2^53 a number is no longer an integer SQLite's INTEGER column takes
  // from JavaScript (1e308 was a 500).
  size: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
  /** 2.8's deprecated copy of size. */
  length: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
  repository: Type.Optional(text(1024)),
  tag: Type.Optional(text(1024)),
});

const RegistryEventShape = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 256 }),
  timestamp: Type.Optional(text(64)),
  action: text(64),
  target: Target,
  // What the request and the actor say is only recorded (shortened), never acted on, and the
  // registry's client chose some of it (a User-Agent of any length Go accepts, 1 MiB): no bound
  // here, or one long User-Agent is a 400 the registry retries for ever while its queue waits.
  request: Type.Optional(
    Type.Object({
      addr: Type.Optional(Type.String()),
      method: Type.Optional(Type.String()),
      useragent: Type.Optional(Type.String()),
    }),
  ),
  actor: Type.Optional(Type.Object({ name: Type.Optional(Type.String()) })),
});

const EnvelopeShape = Type.Object({
  events: Type.Array(Type.Unknown(), { maxItems: MAX_EVENTS_PER_ENVELOPE }),
});

type RawEvent = Static<typeof RegistryEventShape>;

/** Who caused an event and from where, as the registry saw it. */
export interface EventOrigin {
  /** The event's id: what retries are recognised by. */
  id: string;
  /** The event's timestamp, unix ms (the receive time when it has none). */
  atUnixMs: number;
  /** actor.name: our token's subject; null when anonymous. */
  actor: string | null;
  /** request.addr without the port; null when absent. */
  address: string | null;
  userAgent: string | null;
}

export type RegistryEvent = EventOrigin &
  (
    | {
        kind: "manifest.push";
        repository: string;
        tag?: string;
        digest: string;
        mediaType: string;
        sizeBytes: number;
      }
    | {
        kind: "manifest.pull";
        repository: string;
        tag?: string;
        digest: string;
        mediaType: string;
        /** request.method; a HEAD is an existence check, not a pull (containerd resolves tags with HEAD). */
        method: string | null;
      }
    | { kind: "tag.delete"; repository: string; tag: string }
    /** A delete by digest: a manifest, or a blob (the registry's events do not tell them apart). */
    | { kind: "digest.delete"; repository: string; digest: string }
    /** registry 3.x RepoDeleted: only the repository. */
    | { kind: "repository.delete"; repository: string }
    /** Blob push/pull/mount, unknown actions: not for the index. */
    | { kind: "ignored"; reason: string }
  );

export type ParsedEnvelope = { ok: true; events: RegistryEvent[] } | { ok: false; problem: string };

/** Whether a Content-Type header (parameters allowed) names a notification envelope. */
export function isEventsMediaType(contentType: string | null): boolean {
  const type = (contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  return (EVENTS_MEDIA_TYPES as readonly string[]).includes(type);
}

/**
 * The events of an envelope (JSON already parsed), or the first problem found, naming the event
 * and field (`events[3].target.digest: ...`). Never throws.
 */
export function parseEnvelope(value: unknown, nowUnixMs: number): ParsedEnvelope {
  if (!Value.Check(EnvelopeShape, value)) {
    const count = Array.isArray((value as { events?: unknown } | null)?.events)
      ? (value as { events: unknown[] }).events.length
      : 0;
    if (count > MAX_EVENTS_PER_ENVELOPE)
      return { ok: false, problem: `events: at most ${MAX_EVENTS_PER_ENVELOPE} events per request` };
    return { ok: false, problem: `envelope${firstError(EnvelopeShape, value, "")}` };
  }
  const events: RegistryEvent[] = [];
  for (const [index, raw] of value.events.entries()) {
    const where = `events[${index}]`;
    if (!Value.Check(RegistryEventShape, raw))
      return { ok: false, problem: `${where}${firstError(RegistryEventShape, raw, "")}` };
    const parsed = classify(raw, nowUnixMs);
    if (typeof parsed === "string") return { ok: false, problem: `${where}.${parsed}` };
    events.push(parsed);
  }
  return { ok: true, events };
}

function firstError(schema: Parameters<typeof Value.Errors>[0], value: unknown, prefix: string): string {
  const error = Value.Errors(schema, value).First();
  if (!error) return `${prefix}: malformed`;
  const path = error.path.replace(/^\//, ".").replaceAll("/", ".");
  return `${prefix}${path}: ${error.message}`;
}

const present = (value: string | undefined) => (value === undefined || value === "" ? undefined : value);

/** The event's meaning, or the problem with it as `field: message`. */
function classify(raw: RawEvent, nowUnixMs: number): RegistryEvent | string {
  const at = raw.timestamp === undefined ? Number.NaN : Date.parse(raw.timestamp);
  if (raw.timestamp !== undefined && Number.isNaN(at)) return "timestamp: not an RFC 3339 time";
  const origin: EventOrigin = {
    id: raw.id,
    // Go writes the zero time for an unset timestamp (no omitempty for structs).
    atUnixMs: Number.isNaN(at) || at <= 0 ? nowUnixMs : at,
    actor: present(raw.actor?.name) ?? null,
    address: hostOf(present(raw.request?.addr)),
    userAgent: present(raw.request?.useragent)?.slice(0, 256) ?? null,
  };
  const { target } = raw;
  const ignored = (reason: string): RegistryEvent => ({ ...origin, kind: "ignored", reason });
  if (!["push", "pull", "delete", "mount"].includes(raw.action))
    return ignored(`unknown action ${JSON.stringify(raw.action.slice(0, 20))}`);
  if (raw.action === "mount") return ignored("blob mount");
  const repository = present(target.repository);
  if (repository === undefined) return "target.repository: missing";
  // The registry's grammar, host component included (`localhost:5000/app`): it accepts such a
  // name and regauth's scopes grant it, so refusing its events would stall the registry's queue.
  if (!isResourceName(repository))
    return "target.repository: not a repository name (distribution's reference grammar)";
  const tag = present(target.tag);
  if (tag !== undefined && !TAG.test(tag)) return "target.tag: not a tag (at most 128 of [A-Za-z0-9_.-])";
  const digest = present(target.digest);
  if (digest !== undefined && !DIGEST.test(digest)) return "target.digest: not a digest (algorithm:hex)";

  if (raw.action === "delete") {
    if (tag !== undefined) return { ...origin, kind: "tag.delete", repository, tag };
    if (digest !== undefined) return { ...origin, kind: "digest.delete", repository, digest };
    return { ...origin, kind: "repository.delete", repository };
  }
  const mediaType = present(target.mediaType);
  if (mediaType === undefined || !MANIFEST_MEDIA_TYPES.has(mediaType)) return ignored(`blob ${raw.action}`);
  if (digest === undefined) return "target.digest: missing";
  if (raw.action === "push") {
    const sizeBytes = target.size || target.length || 0;
    return {
      ...origin,
      kind: "manifest.push",
      repository,
      ...(tag !== undefined ? { tag } : {}),
      digest,
      mediaType,
      sizeBytes,
    };
  }
  return {
    ...origin,
    kind: "manifest.pull",
    repository,
    ...(tag !== undefined ? { tag } : {}),
    digest,
    mediaType,
    method: present(raw.request?.method)?.slice(0, 16).toUpperCase() ?? null,
  };
}

/**
 * The host of request.addr: "192.0.2.1:4242" → "192.0.2.1", "[2001:db8::1]:4242" → "2001:db8::1".
 * distribution's RemoteAddr may also give an X-Forwarded-For entry without a port.
 */
export function hostOf(addr: string | undefined): string | null {
  if (addr === undefined) return null;
  const trimmed = addr.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(trimmed);
  let host = trimmed;
  if (bracketed) host = bracketed[1] as string;
  else if (/^[^:]+:\d+$/.test(trimmed)) host = trimmed.slice(0, trimmed.lastIndexOf(":"));
  return host === "" ? null : host.slice(0, 64);
}
