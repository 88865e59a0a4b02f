/**
 * Access token secrets (issue 10 item 3): `regauth_pat_` + 32 base62 characters of randomness
 * (190 bits) + 6 base62 characters of the CRC32 of those 32. The prefix lets secret scanners
 * (GitHub's, gitleaks, trufflehog) spot a leaked token, and the checksum lets them, and us, tell a
 * real one from a look-alike without a database (GitHub's token format, github.blog 2021-04-05).
 * The secret is shown once and stored only as a keyed hash (src/access-tokens/key.ts): a fast hash
 * is enough for 190 random bits (security.md §3.6), so the token path needs no argon2 or bcrypt.
 */
export const ACCESS_TOKEN_PREFIX = "regauth_pat_";
const RANDOM_LENGTH = 32;
const CHECKSUM_LENGTH = 6;
export const ACCESS_TOKEN_LENGTH = ACCESS_TOKEN_PREFIX.length + RANDOM_LENGTH + CHECKSUM_LENGTH;
const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SHAPE = new RegExp(`^${ACCESS_TOKEN_PREFIX}[0-9A-Za-z]{${RANDOM_LENGTH + CHECKSUM_LENGTH}}$`);
/** The largest multiple of 62 below 256: bytes at or above it are rejected, so every digit is uniform. */
const UNBIASED_LIMIT = 62 * 4;

/** `value` in base62, left-padded with "0" to `width` digits. */
export function base62(value: number, width: number): string {
  let text = "";
  for (let rest = value; rest > 0; rest = Math.floor(rest / 62)) text = BASE62[rest % 62] + text;
  return text.padStart(width, "0");
}

export function checksumOf(randomPart: string): string {
  return base62(Bun.hash.crc32(randomPart), CHECKSUM_LENGTH);
}

/** 32 uniform base62 digits from crypto.getRandomValues, by rejection sampling. */
function randomBase62(length: number): string {
  let text = "";
  const bytes = new Uint8Array(64);
  while (text.length < length) {
    crypto.getRandomValues(bytes);
    for (const byte of bytes) {
      if (byte >= UNBIASED_LIMIT) continue;
      text += BASE62[byte % 62];
      if (text.length === length) break;
    }
  }
  return text;
}

export function generateAccessTokenSecret(): string {
  const random = randomBase62(RANDOM_LENGTH);
  return `${ACCESS_TOKEN_PREFIX}${random}${checksumOf(random)}`;
}

/**
 * Whether a Basic password is an access token: the prefix, the length, the alphabet and the
 * checksum. No database, no key: the authenticator asks this first and passes everything else on.
 */
export function looksLikeAccessToken(password: string): boolean {
  if (password.length !== ACCESS_TOKEN_LENGTH || !SHAPE.test(password)) return false;
  const random = password.slice(ACCESS_TOKEN_PREFIX.length, ACCESS_TOKEN_PREFIX.length + RANDOM_LENGTH);
  return password.slice(ACCESS_TOKEN_PREFIX.length + RANDOM_LENGTH) === checksumOf(random);
}
