/**
 * The HTTPS listener's protocol settings: docker_auth's `server.tls_min_version`,
 * `tls_cipher_suites` and `tls_curve_preferences` (reference.yml; names as Go's crypto/tls
 * spells them, or numbers read like Go's strconv.ParseUint(s, 0, 16)), turned into what
 * Bun.serve's `tls` takes: `minVersion` (the protocol number), `ciphers` (an OpenSSL cipher
 * list, TLS 1.2 only) and `ecdhCurve` (a group list). Bun's TLS library is BoringSSL, found by
 * trying Bun 1.4.5: TLS 1.3 suites are not configurable there (as in Go), and RC4,
 * TLS_RSA_WITH_AES_128_CBC_SHA256 and ECDHE-RSA-3DES do not exist.
 *
 * Default (issue 8: TLS 1.2 accepted CBC-SHA1 suites with no way to restrict them): TLS 1.2 and
 * 1.3, and for TLS 1.2 only ECDHE key exchange with AEAD ciphers (Mozilla's "intermediate"
 * profile, which every supported docker, containerd and Go client speaks).
 */
import type { ConfigProblem } from "../errors.ts";

export const TLS12 = 0x0303;
export const TLS13 = 0x0304;

export const DEFAULT_TLS12_CIPHERS = [
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
].join(":");

/** What Bun.serve's `tls` gets besides the certificate and key. */
export interface BunTlsProtocolOptions {
  minVersion: number;
  ciphers: string;
  ecdhCurve?: string;
}

/** The three settings as the schema admits them (strings or YAML numbers). */
export interface TlsSettings {
  tls_min_version?: string | number | undefined;
  tls_cipher_suites?: (string | number)[] | undefined;
  tls_curve_preferences?: (string | number)[] | undefined;
}

const VERSIONS: Record<string, number> = {
  SSL30: 0x0300,
  TLS10: 0x0301,
  TLS11: 0x0302,
  TLS12: 0x0303,
  TLS13: 0x0304,
};

/** Go's cipher suite constants: name, IANA number, the OpenSSL name, or why there is none. */
const SUITES: { go: string; id: number; openssl: string | { missing: string } }[] = [
  { go: "TLS_RSA_WITH_RC4_128_SHA", id: 0x0005, openssl: { missing: "RC4 is broken (RFC 7465)" } },
  { go: "TLS_RSA_WITH_3DES_EDE_CBC_SHA", id: 0x000a, openssl: "DES-CBC3-SHA" },
  { go: "TLS_RSA_WITH_AES_128_CBC_SHA", id: 0x002f, openssl: "AES128-SHA" },
  { go: "TLS_RSA_WITH_AES_256_CBC_SHA", id: 0x0035, openssl: "AES256-SHA" },
  {
    go: "TLS_RSA_WITH_AES_128_CBC_SHA256",
    id: 0x003c,
    openssl: { missing: "Bun's TLS library (BoringSSL) does not implement it" },
  },
  { go: "TLS_RSA_WITH_AES_128_GCM_SHA256", id: 0x009c, openssl: "AES128-GCM-SHA256" },
  { go: "TLS_RSA_WITH_AES_256_GCM_SHA384", id: 0x009d, openssl: "AES256-GCM-SHA384" },
  { go: "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", id: 0xc007, openssl: { missing: "RC4 is broken (RFC 7465)" } },
  { go: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", id: 0xc009, openssl: "ECDHE-ECDSA-AES128-SHA" },
  { go: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", id: 0xc00a, openssl: "ECDHE-ECDSA-AES256-SHA" },
  { go: "TLS_ECDHE_RSA_WITH_RC4_128_SHA", id: 0xc011, openssl: { missing: "RC4 is broken (RFC 7465)" } },
  {
    go: "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    id: 0xc012,
    openssl: { missing: "Bun's TLS library (BoringSSL) does not implement it" },
  },
  { go: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", id: 0xc013, openssl: "ECDHE-RSA-AES128-SHA" },
  { go: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", id: 0xc014, openssl: "ECDHE-RSA-AES256-SHA" },
  { go: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", id: 0xc023, openssl: "ECDHE-ECDSA-AES128-SHA256" },
  { go: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", id: 0xc027, openssl: "ECDHE-RSA-AES128-SHA256" },
  { go: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", id: 0xc02f, openssl: "ECDHE-RSA-AES128-GCM-SHA256" },
  { go: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", id: 0xc02b, openssl: "ECDHE-ECDSA-AES128-GCM-SHA256" },
  { go: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", id: 0xc030, openssl: "ECDHE-RSA-AES256-GCM-SHA384" },
  { go: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", id: 0xc02c, openssl: "ECDHE-ECDSA-AES256-GCM-SHA384" },
  {
    go: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    id: 0xcca8,
    openssl: "ECDHE-RSA-CHACHA20-POLY1305",
  },
  {
    go: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    id: 0xcca9,
    openssl: "ECDHE-ECDSA-CHACHA20-POLY1305",
  },
];

/** Go's older names for the CHACHA20 suites, still constants in crypto/tls. */
const SUITE_ALIASES: Record<string, string> = {
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
};

const TLS13_SUITES: Record<string, number> = {
  TLS_AES_128_GCM_SHA256: 0x1301,
  TLS_AES_256_GCM_SHA384: 0x1302,
  TLS_CHACHA20_POLY1305_SHA256: 0x1303,
};

/** Go's CurveID names and numbers (RFC 8446 NamedGroup) → BoringSSL group names. */
const CURVES: { go: string; id: number; boringssl: string }[] = [
  { go: "P256", id: 23, boringssl: "P-256" },
  { go: "P384", id: 24, boringssl: "P-384" },
  { go: "P521", id: 25, boringssl: "P-521" },
  { go: "X25519", id: 29, boringssl: "X25519" },
  { go: "X25519MLKEM768", id: 4588, boringssl: "X25519MLKEM768" },
];

/** strconv.ParseUint(s, 0, 16): decimal, 0x hex, 0o or leading-0 octal, 0b binary; else null. */
export function parseGoUint16(value: string | number): number | null {
  if (typeof value === "number")
    return Number.isInteger(value) && value >= 0 && value <= 0xffff ? value : null;
  const text = value.trim().replaceAll("_", "");
  let parsed: number;
  if (/^0[xX][0-9a-fA-F]+$/.test(text)) parsed = Number.parseInt(text.slice(2), 16);
  else if (/^0[oO][0-7]+$/.test(text)) parsed = Number.parseInt(text.slice(2), 8);
  else if (/^0[bB][01]+$/.test(text)) parsed = Number.parseInt(text.slice(2), 2);
  else if (/^0[0-7]+$/.test(text)) parsed = Number.parseInt(text.slice(1), 8);
  else if (/^[0-9]+$/.test(text)) parsed = Number.parseInt(text, 10);
  else return null;
  return parsed <= 0xffff ? parsed : null;
}

function minVersionOf(value: string | number, path: string, problems: ConfigProblem[]): number | null {
  const version =
    (typeof value === "string" ? VERSIONS[value.trim().toUpperCase()] : undefined) ?? parseGoUint16(value);
  if (version === TLS12 || version === TLS13) return version;
  const shown = JSON.stringify(value);
  if (version === 0x0300) {
    problems.push({
      path,
      message: `${shown}: SSL 3.0 is broken (RFC 7568) and not offered; use TLS12 or TLS13`,
    });
  } else if (version === 0x0301 || version === 0x0302) {
    problems.push({
      path,
      message: `${shown}: TLS 1.0 and 1.1 are deprecated (RFC 8996) and not offered; use TLS12 or TLS13`,
    });
  } else {
    problems.push({ path, message: `${shown}: unknown TLS version; use TLS12 or TLS13 (or 0x0303, 0x0304)` });
  }
  return null;
}

function suiteOf(value: string | number, path: string, problems: ConfigProblem[]): string | null {
  const text = typeof value === "string" ? value.trim() : "";
  const id = parseGoUint16(value);
  const goName = SUITE_ALIASES[text] ?? text;
  if (Object.hasOwn(TLS13_SUITES, text) || (id !== null && Object.values(TLS13_SUITES).includes(id))) {
    problems.push({
      path,
      message: `${JSON.stringify(value)}: TLS 1.3 suites are not configurable (all three are always on, as in Go); list TLS 1.2 suites only`,
    });
    return null;
  }
  const suite = SUITES.find((s) => s.go === goName || (id !== null && s.id === id) || s.openssl === text);
  if (!suite) {
    problems.push({
      path,
      message: `${JSON.stringify(value)}: unknown cipher suite; use Go's names (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256), their numbers, or OpenSSL's (ECDHE-RSA-AES128-GCM-SHA256)`,
    });
    return null;
  }
  if (typeof suite.openssl !== "string") {
    problems.push({ path, message: `${suite.go} cannot be offered: ${suite.openssl.missing}` });
    return null;
  }
  return suite.openssl;
}

function curveOf(value: string | number, path: string, problems: ConfigProblem[]): string | null {
  const text = typeof value === "string" ? value.trim() : "";
  const id = parseGoUint16(value);
  const curve = CURVES.find((c) => c.go === text || c.boringssl === text || (id !== null && c.id === id));
  if (!curve) {
    problems.push({
      path,
      message: `${JSON.stringify(value)}: unknown curve; use ${CURVES.map((c) => c.go).join(", ")} (or their numbers)`,
    });
    return null;
  }
  return curve.boringssl;
}

/**
 * Checks the settings, adding problems at `server.tls_*` paths; `hasTls` is whether
 * server.certificate and key are set (without them the settings would silently do nothing).
 */
export function checkTlsSettings(settings: TlsSettings, hasTls: boolean, problems: ConfigProblem[]): void {
  resolveTls(settings, hasTls, problems);
}

/** Bun.serve `tls` protocol options for settings that passed checkTlsSettings. */
export function bunTlsOptions(settings: TlsSettings): BunTlsProtocolOptions {
  const problems: ConfigProblem[] = [];
  const options = resolveTls(settings, true, problems);
  if (problems.length > 0) throw new Error(`unchecked TLS settings: ${problems[0]?.message}`); // load.ts checked them
  return options;
}

function resolveTls(
  settings: TlsSettings,
  hasTls: boolean,
  problems: ConfigProblem[],
): BunTlsProtocolOptions {
  const at = (key: string) => `server.${key}`;
  if (!hasTls) {
    for (const key of ["tls_min_version", "tls_cipher_suites", "tls_curve_preferences"] as const) {
      if (settings[key] !== undefined) {
        problems.push({
          path: at(key),
          message:
            "has no effect without server.certificate and server.key, or server.letsencrypt (regauth serves plain HTTP)",
        });
      }
    }
  }
  const minVersion =
    settings.tls_min_version === undefined
      ? TLS12
      : (minVersionOf(settings.tls_min_version, at("tls_min_version"), problems) ?? TLS12);
  let ciphers = DEFAULT_TLS12_CIPHERS;
  const suites = settings.tls_cipher_suites;
  if (suites !== undefined) {
    if (suites.length === 0) {
      problems.push({
        path: at("tls_cipher_suites"),
        message: "list at least one suite, or leave the key out",
      });
    } else if (minVersion === TLS13) {
      // docker_auth's config.go validate() refuses the same combination.
      problems.push({
        path: at("tls_cipher_suites"),
        message: "with tls_min_version TLS13 there is nothing to choose: TLS 1.3 suites are not configurable",
      });
    }
    const names = suites.map((s, i) => suiteOf(s, `${at("tls_cipher_suites")}.${i}`, problems));
    ciphers = names.filter((n): n is string => n !== null).join(":");
  }
  const options: BunTlsProtocolOptions = { minVersion, ciphers };
  const curves = settings.tls_curve_preferences;
  if (curves !== undefined) {
    if (curves.length === 0) {
      problems.push({
        path: at("tls_curve_preferences"),
        message: "list at least one curve, or leave the key out",
      });
    }
    const names = curves.map((c, i) => curveOf(c, `${at("tls_curve_preferences")}.${i}`, problems));
    options.ecdhCurve = names.filter((n): n is string => n !== null).join(":");
  }
  return options;
}
