/**
 * What the image index tells the rest of regauth when it changes (issue 11): the webhooks
 * (src/webhooks/) turn these into deliveries. The receiver (registry notifications) and the
 * crawler (`regauth repo sync`) both produce them, in the order they were applied, from inside
 * the transaction that applied them, so a change is queued exactly when it is indexed.
 */
import type { Database } from "bun:sqlite";

export type IndexChangeType = "repository.created" | "tag.pushed" | "tag.deleted";

export interface IndexChange {
  type: IndexChangeType;
  /** Stable per change: the notification's event id (plus a suffix for derived changes), or "sync-…". */
  eventId: string;
  repository: string;
  /** Absent for repository.created. */
  tag?: string;
  digest?: string;
  mediaType?: string;
  sizeBytes?: number;
  /** The event's actor (our token's subject); null when unknown or anonymous. */
  pusher: string | null;
  /** The client address the registry saw; null when unknown. */
  pusherAddress: string | null;
  /** When it happened, unix milliseconds (the event's timestamp). */
  atUnixMs: number;
  /** Where the change came from. */
  source: "notification" | "sync";
}

/**
 * Called inside the index's write transaction with every change it applied (possibly none). Must
 * only write to `db` (same transaction) and must not throw for anything but a store fault.
 */
export type IndexChangeSink = (db: Database, changes: readonly IndexChange[]) => void;

/**
 * The `sub` of the tokens regauth signs for itself to crawl the registry (`regauth repo sync`). No
 * database account can have this name (src/accounts/users.ts allows no colon); the receiver
 * ignores the pull events the crawl itself causes, so they count as nobody's pulls.
 */
export const INDEX_CRAWLER_SUBJECT = "regauth:index-crawler";
