/**
 * Notifications as Debian's docker-registry (distribution 2.8) sends them, for tests that post
 * many at once (protocol_and_peers.md §C.3: one event per envelope, a manifest push by tag).
 */
export const NOTIFICATION_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json";

export function manifestPushEnvelope(event: {
  id: string;
  repository: string;
  tag: string;
  digest: string;
  registryHost: string;
  actor?: string;
  clientAddress?: string;
}): string {
  const { id, repository, tag, digest, registryHost } = event;
  return JSON.stringify({
    events: [
      {
        id,
        timestamp: new Date().toISOString(),
        action: "push",
        target: {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          size: 400,
          digest,
          length: 400,
          repository,
          url: `http://${registryHost}/v2/${repository}/manifests/${digest}`,
          tag,
        },
        request: {
          id: `r-${id}`,
          addr: `${event.clientAddress ?? "192.0.2.9"}:40000`,
          host: registryHost,
          method: "PUT",
          useragent: "burst",
        },
        actor: { name: event.actor ?? "alice" },
        source: { addr: registryHost, instanceID: "burst" },
      },
    ],
  });
}
