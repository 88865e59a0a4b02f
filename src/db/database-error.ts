/** The database could not be opened or is not ours to use; the message says what to do. Startup and CLI only. */
export class DatabaseError extends Error {
  override name = "DatabaseError";
}
