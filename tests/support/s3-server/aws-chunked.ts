/**
 * Decoding of the `aws-chunked` content encoding (SigV4 streaming uploads): chunks framed as
 * `<hex size>[;chunk-signature=<sig>]\r\n<data>\r\n`, a final zero-size chunk, then optional
 * trailing headers (`name:value\r\n` lines) and an empty line. Signatures are stripped, not checked.
 */
import { errors, invalidRequest } from './errors.js';

export interface ChunkedOptions {
  /** Chunks carry `;chunk-signature=`: STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER). */
  signed: boolean;
}

const MAX_LINE = 4096;
const MIN_SIGNED_CHUNK = 8192;
const malformed = (why: string) => invalidRequest(`The aws-chunked body is malformed: ${why}.`);

/** Reads the framing from `source`, yields the data; `trailers` receives the trailing headers. */
export async function* decodeAwsChunked(
  source: AsyncIterable<Buffer>,
  options: ChunkedOptions,
  trailers: Map<string, string>,
): AsyncGenerator<Buffer> {
  const reader = new ByteReader(source);
  let previousSize = -1;
  for (;;) {
    const size = parseChunkHeader(await reader.line(), options.signed);
    if (options.signed && size > 0 && previousSize >= 0 && previousSize < MIN_SIGNED_CHUNK)
      throw errors.invalidChunkSize();
    previousSize = size;
    if (size === 0) break;
    for (let left = size; left > 0;) {
      const piece = await reader.take(left);
      left -= piece.byteLength;
      yield piece;
    }
    if ((await reader.line()) !== '') throw malformed('a chunk is longer than its size');
  }
  for (;;) {
    const line = await reader.line();
    if (line === '') break;
    const colon = line.indexOf(':');
    if (colon <= 0) throw malformed('a trailing header has no name');
    trailers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  if (!(await reader.atEnd())) throw malformed('data follows the trailing headers');
}

function parseChunkHeader(line: string, signed: boolean): number {
  const [sizeText, ...extensions] = line.split(';');
  if (!/^[0-9a-fA-F]{1,16}$/.test(sizeText!)) throw malformed('a chunk size is not hexadecimal');
  const hasSignature = extensions.some((x) => /^chunk-signature=[0-9a-f]{64}$/.test(x));
  if (signed !== hasSignature)
    throw malformed(signed ? 'a chunk has no signature' : 'an unsigned chunk has a signature');
  const size = Number.parseInt(sizeText!, 16);
  if (!Number.isSafeInteger(size)) throw malformed('a chunk size is too large');
  return size;
}

/** Pulls lines and byte runs out of a stream of buffers. */
class ByteReader {
  private buffer: Buffer = Buffer.alloc(0);
  private readonly it: AsyncIterator<Buffer>;
  private done = false;

  constructor(source: AsyncIterable<Buffer>) {
    this.it = source[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const next = await this.it.next();
    if (next.done) {
      this.done = true;
      return false;
    }
    this.buffer = this.buffer.byteLength ? Buffer.concat([this.buffer, next.value]) : next.value;
    return true;
  }

  /** The next line without its CRLF. */
  async line(): Promise<string> {
    for (;;) {
      const end = this.buffer.indexOf('\r\n');
      if (end >= 0) {
        const line = this.buffer.subarray(0, end).toString('latin1');
        this.buffer = this.buffer.subarray(end + 2);
        return line;
      }
      if (this.buffer.byteLength > MAX_LINE) throw malformed('a line is too long');
      if (!(await this.fill())) throw errors.incompleteBody();
    }
  }

  /** Up to `max` bytes (at least one). */
  async take(max: number): Promise<Buffer> {
    if (this.buffer.byteLength === 0 && !(await this.fill())) throw errors.incompleteBody();
    const piece = this.buffer.subarray(0, max);
    this.buffer = this.buffer.subarray(piece.byteLength);
    return piece;
  }

  async atEnd(): Promise<boolean> {
    while (this.buffer.byteLength === 0) if (!(await this.fill())) return true;
    return false;
  }
}
