/**
 * Just enough DER (X.690) to write one self-signed X.509 certificate, because a freshly installed
 * regauth must mint its own signing certificate without shelling out to openssl.
 */
function encodeLength(length: number): Uint8Array {
  if (length < 0x80) return Uint8Array.of(length);
  const bytes: number[] = [];
  for (let n = length; n > 0; n >>= 8) bytes.unshift(n & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

function tlv(tag: number, ...contents: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(contents);
  return Buffer.concat([Uint8Array.of(tag), encodeLength(body.length), body]);
}

export const der = {
  sequence: (...items: Uint8Array[]) => tlv(0x30, ...items),
  set: (...items: Uint8Array[]) => tlv(0x31, ...items),
  /** An unsigned big-endian integer; a leading zero is added when the high bit is set. */
  integer(bytes: Uint8Array): Uint8Array {
    let start = 0;
    while (start < bytes.length - 1 && bytes[start] === 0) start++;
    const trimmed = bytes.subarray(start);
    return (trimmed[0] as number) & 0x80 ? tlv(0x02, Uint8Array.of(0), trimmed) : tlv(0x02, trimmed);
  },
  boolean: (value: boolean) => tlv(0x01, Uint8Array.of(value ? 0xff : 0)),
  bitString: (bytes: Uint8Array, unusedBits = 0) => tlv(0x03, Uint8Array.of(unusedBits), bytes),
  octetString: (bytes: Uint8Array) => tlv(0x04, bytes),
  utf8String: (text: string) => tlv(0x0c, Buffer.from(text, "utf8")),
  oid(dotted: string): Uint8Array {
    const parts = dotted.split(".").map(Number);
    const out: number[] = [40 * (parts[0] as number) + (parts[1] as number)];
    for (const part of parts.slice(2)) {
      const chunk: number[] = [part & 0x7f];
      for (let n = part >> 7; n > 0; n >>= 7) chunk.unshift((n & 0x7f) | 0x80);
      out.push(...chunk);
    }
    return tlv(0x06, Uint8Array.from(out));
  },
  /** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
  time(date: Date): Uint8Array {
    const iso = date.toISOString().replace(/[-:T]/g, "").slice(0, 14); // YYYYMMDDHHMMSS
    const year = date.getUTCFullYear();
    return year < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`));
  },
  explicit: (tagNumber: number, inner: Uint8Array) => tlv(0xa0 | tagNumber, inner),
};
